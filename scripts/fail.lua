-- fail.lua: record failed logins of one identity (one, or several coalesced), atomically.
--
-- KEYS[1]  the identity's attempt record (hash)   lockout:attempt:{ip=203.0.113.9}
-- KEYS[2]  the identity's lock flag (string)      lockout:lock:{ip=203.0.113.9}
-- KEYS[3]  the identity's lockout count (string)  lockout:lockouts:{ip=203.0.113.9}: how many
--          lockouts it started within the lockout memory (repeat offenders)
-- KEYS[4]  optional, for refused attempts (refused on a lock read before, or coalesced by a
--          lock cache): the identity's reset marker (lockout:reset:{ip=203.0.113.9}); while it
--          exists the identity was just reset, and refusals decided before the reset are
--          dropped instead of counting against it (or locking it again)
-- ARGV[1]  cool-off, ms: how long failures are remembered after the latest one
-- ARGV[2]  lockout duration, ms: how long a lock flag lives after it is set or renewed (the
--          first lockout's, with repeat offenders)
-- ARGV[3]  failure limit: the count at which the identity is locked; 0 to only count
--          (Axes' LOCK_OUT_AT_FAILURE = False)
-- ARGV[4]  how many failures to add (1, or the refused attempts coalesced by a lock cache)
-- ARGV[5]  now, seconds since the Unix epoch (the caller's clock): the failure's time
-- ARGV[6]  lockout memory, ms: how long a lockout is remembered; 0: repeat offenders off
-- ARGV[7]  backoff: each remembered lockout multiplies the next one's duration by this
-- ARGV[8]  the longest lockout, ms
-- ARGV[9..] metadata, as field/value pairs, each only when given: 'ua' user agent, 'p' path
--
-- Adds the failures, stamps the first/last failure time and the latest metadata, sets the lock
-- flag when the count is at or over the limit (so a failure during a lockout renews it, as in
-- Axes: a record outlives its lock, so a present lock flag has such a count), and gives the
-- record a TTL of the cool-off (or of the lock, if that is longer) so that nothing outlives its
-- use. With repeat offenders, a lock set where none was starts a lockout: the count (KEYS[3])
-- goes up and lives the lockout memory, and the n-th lockout lasts the lockout duration times
-- backoff^(n-1), at most the longest; a renewal keeps the current lockout's duration.
--
-- Redis does not undo a script that fails halfway, so the durations are checked before
-- anything is written, and the record gets its TTL right after the command that may create it: no
-- error can leave a key without expiry.
--
-- Every argument given to redis.call is one of the strings received, but a repeat offender's
-- lockout duration: a Lua number would be formatted through printf, which costs more than the
-- command. Without repeat offenders the whole script is one HINCRBY, one PEXPIRE, one HSET, and
-- one EXISTS and one SET (with a second PEXPIRE when the lock outlives the cool-off) when it
-- locks.
--
-- Returns {failures, lock_ms, started, lockouts}: lock_ms is the lock's duration, or -2 when not
-- locked ({0, -2, 0, 0} when the reset marker dropped the refusals); started is 1 when this call
-- started a lockout (no lock flag was there), else 0; lockouts is the lockout's number within
-- the memory when it locks with repeat offenders, else 0.
-- Example, limit 3, third failure:
--   EVALSHA <sha> 3 lockout:attempt:{ip=203.0.113.9} lockout:lock:{ip=203.0.113.9}
--           lockout:lockouts:{ip=203.0.113.9}
--           1800000 1800000 3 1 1764380000 0 1 1800000 ua curl/8.5 p /login
--   -> {3, 1800000, 1, 0}
if (#KEYS ~= 3 and #KEYS ~= 4) or #ARGV < 8 or #ARGV % 2 ~= 0 then
  return redis.error_reply('fail.lua: expected 3 or 4 keys, 8 arguments and field/value pairs')
end
local record, lock, lockouts = KEYS[1], KEYS[2], KEYS[3]
local cooloff, lockout, now = ARGV[1], ARGV[2], ARGV[5]
-- Whole milliseconds from 1 to 365 days, or PEXPIRE and SET would fail after the first write.
local function is_duration(ms)
  return ms and ms >= 1 and ms <= 31536000000 and ms % 1 == 0
end
local cooloff_ms, lockout_ms = tonumber(cooloff), tonumber(lockout)
local memory_ms, backoff, longest_ms = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if not is_duration(cooloff_ms) or not is_duration(lockout_ms) or not is_duration(longest_ms)
    or not (memory_ms == 0 or is_duration(memory_ms)) or not backoff or backoff < 1 then
  return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
end

if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then
  return {0, -2, 0, 0}
end

-- The record's fields are short on purpose (docs/keys.md): a record is paid for once per
-- tracked identity, and these names keep an IP's record in Redis' smallest hash allocation.
local failures = redis.call('HINCRBY', record, 'n', ARGV[4])
redis.call('PEXPIRE', record, cooloff)
if failures == tonumber(ARGV[4]) then
  redis.call('HSET', record, 'f', now, 'l', now, unpack(ARGV, 9))
else
  redis.call('HSET', record, 'l', now, unpack(ARGV, 9))
end

local limit = tonumber(ARGV[3])
if limit == 0 or failures < limit then
  return {failures, -2, 0, 0}
end
local started = 1 - redis.call('EXISTS', lock)
local count = 0
if memory_ms > 0 then
  if started == 1 then
    count = redis.call('INCR', lockouts)
    redis.call('PEXPIRE', lockouts, ARGV[6])
  else
    count = tonumber(redis.call('GET', lockouts)) or 1
  end
  lockout_ms = math.min(math.floor(lockout_ms * backoff ^ (count - 1)), longest_ms)
  lockout = string.format('%d', lockout_ms)
end
redis.call('SET', lock, '1', 'PX', lockout)
if lockout_ms > cooloff_ms then
  redis.call('PEXPIRE', record, lockout)
end
return {failures, lockout_ms, started, count}
