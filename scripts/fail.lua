-- fail.lua: record failed logins of one identity (one, or several coalesced), atomically.
--
-- KEYS[1]  the identity's attempt record (hash)   lockout:attempt:{ip=203.0.113.9}
-- KEYS[2]  the identity's lock flag (string)      lockout:lock:{ip=203.0.113.9}
-- ARGV[1]  cool-off, ms: how long failures are remembered after the latest one
-- ARGV[2]  lockout duration, ms: how long a lock flag lives after it is set or renewed
-- ARGV[3]  failure limit: the count at which the identity is locked
-- ARGV[4]  "1" to lock at the limit, "0" to only count (Axes' LOCK_OUT_AT_FAILURE)
-- ARGV[5]  user agent, ARGV[6] path (metadata for the attempt record; empty: keep the last)
-- ARGV[7]  how many failures to add (1, or the refused attempts coalesced by a lock cache)
--
-- Adds the failures, stamps first/last failure time (Redis' clock, ms since the epoch) and
-- metadata, sets the lock when the count reaches the limit, renews a lock that is already
-- there (a failure during a lockout extends it, as in Axes), and gives the record a TTL of the
-- cool-off (or of the lock, if that is longer) so that nothing outlives its use.
--
-- Returns {failures, lock_ms}: lock_ms is the lock's remaining time, or -2 when not locked.
-- Example, limit 3, third failure:
--   EVALSHA <sha> 2 lockout:attempt:{ip=203.0.113.9} lockout:lock:{ip=203.0.113.9}
--           1800000 1800000 3 1 "curl/8.5" "/login" 1                      -> {3, 1800000}
if #KEYS ~= 2 or #ARGV ~= 7 then
  return redis.error_reply('fail.lua: expected 2 keys and 7 arguments')
end
local record, lock = KEYS[1], KEYS[2]
local cooloff, lockout, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)

local added = tonumber(ARGV[7])
local failures = redis.call('HINCRBY', record, 'failures', added)
-- One HSET: the time of this failure (and of the first), and the latest user agent and path
-- that were given (an attempt without them keeps the last ones).
local fields = {'last', now}
if failures == added then
  fields[#fields + 1] = 'first'
  fields[#fields + 1] = now
end
if ARGV[5] ~= '' then
  fields[#fields + 1] = 'user_agent'
  fields[#fields + 1] = ARGV[5]
end
if ARGV[6] ~= '' then
  fields[#fields + 1] = 'path'
  fields[#fields + 1] = ARGV[6]
end
redis.call('HSET', record, unpack(fields))

-- A present lock is renewed; an absent one is set when the count reaches the limit.
local locked = redis.call('PEXPIRE', lock, lockout) == 1
if not locked and ARGV[4] == '1' and failures >= limit then
  redis.call('SET', lock, '1', 'PX', lockout)
  locked = true
end
local lock_ms = locked and lockout or -2
redis.call('PEXPIRE', record, math.max(cooloff, lock_ms))
return {failures, lock_ms}
