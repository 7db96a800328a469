-- schedule_lock_ends.lua: note when locks told as started will run out, so that their end is
-- told once (a `lockout_expired` event, see end_lockouts.lua).
--
-- KEYS[1]   the lock ends of one shard (sorted set: identity tag by end, ms since the epoch)
--                                                    lockout:lock_ends:3
-- ARGV[1]   how long the set lives at least, ms (the longest lock scheduled, plus the events'
--           retention: an end not taken within it is not told)
-- ARGV[2..] end, tag, end, tag ...
--
-- A tag scheduled again takes its new end. The set's expiry only grows, and nothing stands
-- between the ZADD that may create the set and its PEXPIRE.
--
-- Returns how many tags are newly scheduled.
-- Example:
--   EVALSHA <sha> 1 lockout:lock_ends:3 2593800000 1764381800000 ip=203.0.113.9 -> 1
if #KEYS ~= 1 or #ARGV < 3 or #ARGV % 2 ~= 1 then
  return redis.error_reply('schedule_lock_ends.lua: expected 1 key, a lifetime and end/tag pairs')
end
local lifetime = tonumber(ARGV[1])
if not lifetime or lifetime < 1 or lifetime ~= math.floor(lifetime) then
  return redis.error_reply('schedule_lock_ends.lua: the lifetime must be a whole number of ms > 0')
end
for i = 2, #ARGV, 2 do
  if not tonumber(ARGV[i]) then
    return redis.error_reply('schedule_lock_ends.lua: an end must be a number of ms')
  end
end
local added = redis.call('ZADD', KEYS[1], unpack(ARGV, 2))
if redis.call('PTTL', KEYS[1]) < lifetime then
  redis.call('PEXPIRE', KEYS[1], lifetime)
end
return added
