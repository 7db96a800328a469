-- fail.lua: record failed logins (one, or several coalesced) of the identities of one shard
-- (their keys share a slot), and append the attempt's access-log entry when its stream is in
-- that slot too; all atomically, in one call.
--
-- KEYS, four per identity, then optionally the shard's access log:
--   record   the identity's attempt record (hash)   lockout:attempt:{31.71}ip=10.0.0.1
--   lock     the identity's lock flag (string)      lockout:lock:{31.71}ip=10.0.0.1
--   lockouts the identity's lockout count (string): how many lockouts it started within the
--            lockout memory (repeat offenders)       lockout:lockouts:{31.71}ip=10.0.0.1
--   marker   the identity's reset marker            lockout:reset:{31.71}ip=10.0.0.1: while
--            it exists the identity was just reset, and refused attempts (refused on a lock
--            read before, or coalesced by a lock cache) are dropped instead of counting
--            against it (or locking it again)
--   [4n+1]   the access log (stream)                 lockout:log:{31.71}
-- ARGV[1]  n: how many identities
-- ARGV[2]  now, seconds since the Unix epoch (the caller's clock): the failures' time
-- ARGV[3]  1: these are refused attempts (the markers count); 0: they are not
-- then, for each identity:
--   cool-off, ms: how long failures are remembered after the latest one
--   lockout duration, ms: how long a lock flag lives after it is set or renewed (the first
--     lockout's, with repeat offenders)
--   failure limit: the count at which the identity is locked; 0 to only count (Axes'
--     LOCK_OUT_AT_FAILURE = False)
--   how many failures to add (1, or the refused attempts coalesced by a lock cache)
--   lockout memory, ms: how long a lockout is remembered; 0: repeat offenders off
--   backoff: each remembered lockout multiplies the next one's duration by this
--   the longest lockout, ms
--   m, then m metadata values as field/value pairs, each only when given: 'ua' user agent,
--     'p' path
-- then, with the access log: the oldest entry ID to keep (now - retention, ms since the
-- epoch), the retention in ms, the most entries the stream keeps, and the entry's field/value
-- pairs (as log.lua takes them)
--
-- For each identity: adds the failures, stamps the first/last failure time and the latest
-- metadata, sets the lock flag when the count is at or over the limit (so a failure during a
-- lockout renews it, as in Axes: a record outlives its lock, so a present lock flag has such a
-- count), and gives the record a TTL of the cool-off (or of the lock, if that is longer) so that
-- nothing outlives its use. With repeat offenders, a lock set where none was starts a lockout:
-- the count goes up and lives the lockout memory, and the n-th lockout lasts the lockout
-- duration times backoff^(n-1), at most the longest; a renewal keeps the current lockout's
-- duration. Then the log entry, as log.lua appends it.
--
-- Redis does not undo a script that fails halfway, so every argument is checked before
-- anything is written, and each key gets its TTL right after the command that may create it:
-- no error can leave a key without expiry.
--
-- Every argument given to redis.call is one of the strings received, but a repeat offender's
-- lockout duration: a Lua number would be formatted through printf, which costs more than the
-- command.
--
-- Returns {failures, lock_ms, started, lockouts} for each identity, one after the other:
-- lock_ms is the lock's duration, or -2 when not locked ({0, -2, 0, 0} when the reset marker
-- dropped the refusals); started is 1 when this call started a lockout (no lock flag was
-- there), else 0; lockouts is the lockout's number within the memory when it locks with repeat
-- offenders, else 0.
-- Example, limit 3, third failure of an IP and of its pair with a username, logged:
--   EVALSHA <sha> 9 lockout:attempt:{31.71}ip=10.0.0.1 lockout:lock:{31.71}ip=10.0.0.1
--     lockout:lockouts:{31.71}ip=10.0.0.1 lockout:reset:{31.71}ip=10.0.0.1
--     lockout:attempt:{31.71}ip=10.0.0.1&username=bo lockout:lock:{31.71}ip=10.0.0.1&username=bo
--     lockout:lockouts:{31.71}ip=10.0.0.1&username=bo lockout:reset:{31.71}ip=10.0.0.1&username=bo
--     lockout:log:{31.71}
--     2 1764380000 0
--     1800000 1800000 3 1 0 1 1800000 2 ua curl/8.5
--     1800000 1800000 3 1 0 1 1800000 0
--     1761788000000 2592000000 15625 ip 10.0.0.1 username bo outcome failure
--   -> {3, 1800000, 1, 0, 3, 1800000, 1, 0}
local n = tonumber(ARGV[1])
if not n or n < 1 or n ~= math.floor(n) or (#KEYS ~= 4 * n and #KEYS ~= 4 * n + 1) then
  return redis.error_reply('fail.lua: expected 4 keys per identity (and maybe a log), and n')
end
local now, refused = ARGV[2], ARGV[3] == '1'

-- Whole milliseconds from 1 to 365 days, or PEXPIRE and SET would fail after the first write.
local function is_duration(ms)
  return ms and ms >= 1 and ms <= 31536000000 and ms % 1 == 0
end

-- Every identity's arguments, checked before anything is written: each identity's start in
-- ARGV, then, after them, the log's.
local starts, at = {}, 4
for i = 1, n do
  local cooloff_ms, lockout_ms = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local memory_ms, backoff, longest_ms =
    tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5]), tonumber(ARGV[at + 6])
  local metadata = tonumber(ARGV[at + 7])
  if not is_duration(cooloff_ms) or not is_duration(lockout_ms) or not is_duration(longest_ms)
      or not (memory_ms == 0 or is_duration(memory_ms)) or not backoff or backoff < 1 then
    return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
  end
  if not tonumber(ARGV[at + 2]) or not tonumber(ARGV[at + 3]) or not metadata
      or metadata % 2 ~= 0 or at + 7 + metadata > #ARGV then
    return redis.error_reply('fail.lua: expected a limit, a count and field/value metadata')
  end
  starts[i] = at
  at = at + 8 + metadata
end
local log = KEYS[4 * n + 1]
if log then
  local retention, size = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if not is_duration(retention) or not size or size < 1 or size ~= math.floor(size)
      or (#ARGV - at - 2) < 2 or (#ARGV - at - 2) % 2 ~= 0 then
    return redis.error_reply('fail.lua: the log needs an ID, a retention, a size and fields')
  end
elseif at <= #ARGV then
  return redis.error_reply('fail.lua: arguments left over, and no log key')
end

local replies = {}
for i = 1, n do
  local record, lock, lockouts = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1]
  local a = starts[i]
  local cooloff, lockout, count = ARGV[a], ARGV[a + 1], ARGV[a + 3]
  local failures, lock_ms, started, lockouts_count = 0, -2, 0, 0
  if not (refused and redis.call('EXISTS', KEYS[4 * i]) == 1) then
    -- The record's fields are short on purpose (docs/keys.md): a record is paid for once per
    -- tracked identity, and these names keep an IP's record in Redis' smallest allocation.
    failures = redis.call('HINCRBY', record, 'n', count)
    redis.call('PEXPIRE', record, cooloff)
    local metadata = tonumber(ARGV[a + 7])
    if failures == tonumber(count) then
      redis.call('HSET', record, 'f', now, 'l', now, unpack(ARGV, a + 8, a + 7 + metadata))
    else
      redis.call('HSET', record, 'l', now, unpack(ARGV, a + 8, a + 7 + metadata))
    end
    local limit = tonumber(ARGV[a + 2])
    if limit > 0 and failures >= limit then
      started = 1 - redis.call('EXISTS', lock)
      local length = tonumber(lockout)
      if ARGV[a + 4] ~= '0' then
        if started == 1 then
          lockouts_count = redis.call('INCR', lockouts)
          redis.call('PEXPIRE', lockouts, ARGV[a + 4])
        else
          lockouts_count = tonumber(redis.call('GET', lockouts)) or 1
        end
        length = math.min(math.floor(length * tonumber(ARGV[a + 5]) ^ (lockouts_count - 1)),
          tonumber(ARGV[a + 6]))
        lockout = string.format('%d', length)
      end
      redis.call('SET', lock, '1', 'PX', lockout)
      if length > tonumber(cooloff) then
        redis.call('PEXPIRE', record, lockout)
      end
      lock_ms = length
    end
  end
  replies[4 * i - 3] = failures
  replies[4 * i - 2] = lock_ms
  replies[4 * i - 1] = started
  replies[4 * i] = lockouts_count
end

if log then
  redis.call('XADD', log, 'MINID', '~', ARGV[at], '*', unpack(ARGV, at + 3))
  redis.call('PEXPIRE', log, ARGV[at + 1])
  redis.call('XTRIM', log, 'MAXLEN', '~', ARGV[at + 2])
end
return replies
