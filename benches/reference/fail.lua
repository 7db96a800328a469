-- fail.lua: record failed logins of one identity (one, or several coalesced), atomically.
--
-- KEYS[1]  the identity's attempt record (hash)   lockout:attempt:{ip=203.0.113.9}
-- KEYS[2]  the identity's lock flag (string)      lockout:lock:{ip=203.0.113.9}
-- KEYS[3]  optional, for refused attempts (refused on a lock read before, or coalesced by a
--          lock cache): the identity's reset marker (lockout:reset:{ip=203.0.113.9}); while it
--          exists the identity was just reset, and refusals decided before the reset are
--          dropped instead of counting against it (or locking it again)
-- ARGV[1]  cool-off, ms: how long failures are remembered after the latest one
-- ARGV[2]  lockout duration, ms: how long a lock flag lives after it is set or renewed
-- ARGV[3]  failure limit: the count at which the identity is locked; 0 to only count
--          (Axes' LOCK_OUT_AT_FAILURE = False)
-- ARGV[4]  how many failures to add (1, or the refused attempts coalesced by a lock cache)
-- ARGV[5]  now, seconds since the Unix epoch (the caller's clock): the failure's time
-- ARGV[6..] metadata, as field/value pairs, each only when given: 'ua' user agent, 'p' path
--
-- Adds the failures, stamps the first/last failure time and the latest metadata, sets the lock
-- flag when the count is at or over the limit (so a failure during a lockout renews it, as in
-- Axes: a record outlives its lock, so a present lock flag has such a count), and gives the
-- record a TTL of the cool-off (or of the lock, if that is longer) so that nothing outlives its
-- use.
--
-- Redis does not undo a script that fails halfway, so the durations are checked before
-- anything is written, and the record gets its TTL right after the command that may create it: no
-- error can leave a key without expiry.
--
-- Every argument given to redis.call is one of the strings received: a Lua number would be
-- formatted through printf, which costs more than the command. The whole script is one
-- HINCRBY, one PEXPIRE, one HSET, and one SET (with a second PEXPIRE when the lock outlives
-- the cool-off) when it locks.
--
-- Returns {failures, lock_ms}: lock_ms is the lock's duration, or -2 when not locked ({0, -2}
-- when the reset marker dropped the refusals).
-- Example, limit 3, third failure:
--   EVALSHA <sha> 2 lockout:attempt:{ip=203.0.113.9} lockout:lock:{ip=203.0.113.9}
--           1800000 1800000 3 1 1764380000 ua curl/8.5 p /login        -> {3, 1800000}
if (#KEYS ~= 2 and #KEYS ~= 3) or #ARGV < 5 or #ARGV % 2 ~= 1 then
  return redis.error_reply('fail.lua: expected 2 or 3 keys, 5 arguments and field/value pairs')
end
local record, lock = KEYS[1], KEYS[2]
local cooloff, lockout, now = ARGV[1], ARGV[2], ARGV[5]
-- Whole milliseconds from 1 to 365 days, or PEXPIRE and SET would fail after the first write.
local cooloff_ms, lockout_ms = tonumber(cooloff), tonumber(lockout)
if not cooloff_ms or not lockout_ms or cooloff_ms < 1 or lockout_ms < 1
    or cooloff_ms > 31536000000 or lockout_ms > 31536000000
    or cooloff_ms % 1 ~= 0 or lockout_ms % 1 ~= 0 then
  return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
end

if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, -2}
end

-- The record's fields are short on purpose (docs/keys.md): a record is paid for once per
-- tracked identity, and these names keep an IP's record in Redis' smallest hash allocation.
local failures = redis.call('HINCRBY', record, 'n', ARGV[4])
redis.call('PEXPIRE', record, cooloff)
if failures == tonumber(ARGV[4]) then
  redis.call('HSET', record, 'f', now, 'l', now, unpack(ARGV, 6))
else
  redis.call('HSET', record, 'l', now, unpack(ARGV, 6))
end

local limit = tonumber(ARGV[3])
if limit == 0 or failures < limit then
  return {failures, -2}
end
redis.call('SET', lock, '1', 'PX', lockout)
if lockout_ms > cooloff_ms then
  redis.call('PEXPIRE', record, lockout)
end
return {failures, lockout_ms}
