-- reset_before.lua: a reset of one identity made while its instance could not reach Redis (a
-- successful login with reset_on_success during an outage, see src/server/insurance.rs),
-- applied when Redis answers again: the identity's record, lock, would-be lock (observe mode) and
-- lockout count are deleted
-- unless the record holds a failure counted after the reset, and its reset marker tells of the
-- reset (unless it tells of a later one), so that failures counted before it are dropped when
-- they are written (see fail.lua).
--
-- KEYS: the identity's record, lock, lockout count, would-be lock and reset marker (one slot)
-- ARGV[1]  the reset's time, seconds since the Unix epoch (the resetting instance's clock; a
--          record's latest failure 'l' is in the same unit)
-- ARGV[2]  the marker's life, ms (a marker's value is its life, and its age that value minus
--          its PTTL)
-- ARGV[3]  how long ago the reset was, ms
-- Returns 1 when it deleted anything, else 0.
-- Example, a reset 90 s ago:
--   EVALSHA <sha> 5 lockout:attempt:{31.71}username=alice lockout:lock:{31.71}username=alice
--     lockout:lockouts:{31.71}username=alice lockout:would_lock:{31.71}username=alice
--     lockout:reset:{31.71}username=alice
--     1764380000 1800000 90000
--   -> 1
local at, life, ago = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if #KEYS ~= 5 or not at or not life or life < 1 or life % 1 ~= 0
    or not ago or ago < 0 or ago % 1 ~= 0 then
  return redis.error_reply('reset_before.lua: expected 5 keys, a time, a marker life and an age in ms')
end
local record, lock, lockouts, would_lock, marker = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

if ago < life then
  local known = redis.call('GET', marker)
  local known_age = known and (tonumber(known) or 0) - redis.call('PTTL', marker)
  if not known_age or known_age > ago then
    redis.call('SET', marker, ARGV[2], 'PX', string.format('%d', life - ago))
  end
end

local last = tonumber(redis.call('HGET', record, 'l'))
if last and last > at then
  return 0
end
return math.min(redis.call('UNLINK', record, lock, lockouts, would_lock), 1)
