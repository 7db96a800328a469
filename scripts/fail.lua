-- fail.lua: record failed logins (one, or several coalesced) of the identities of one shard
-- (their keys share a slot), and append the attempt's access-log entry when its stream is in
-- that slot too; all atomically, in one call.
--
-- KEYS, per identity (two, three or four), then optionally the shard's access log:
--   record   the identity's attempt record (hash)   lockout:attempt:{31.71}ip=10.0.0.1
--   lock     the identity's lock flag (string)      lockout:lock:{31.71}ip=10.0.0.1
--            (in observe mode its would-be lock, lockout:would_lock:{31.71}ip=10.0.0.1: the
--            script sets the flag it is given, by the same rule)
--   lockouts only when the identity's lockout memory is not 0: its lockout count (string), how
--            many lockouts it started within the lockout memory (repeat offenders)
--                                                   lockout:lockouts:{31.71}ip=10.0.0.1
--   marker   only when these are refused attempts: the identity's reset marker
--            (lockout:reset:{31.71}ip=10.0.0.1), whose value is the lifetime it was set with
--            (ms), so that its age is that value minus its PTTL; refused attempts (refused on
--            a lock read before, coalesced by a lock cache, or counted by another instance
--            during an outage) counted before the reset are dropped instead of counting
--            against it (or locking it again)
--   last     the access log (stream)                 lockout:log:{31.71}
-- Keys and arguments a call does not need are not sent: Redis pays for each one it receives
-- (docs/performance.md).
-- ARGV[1]  n: how many identities
-- ARGV[2]  now, seconds since the Unix epoch (the caller's clock): the failures' time
-- ARGV[3]  1: these are refused attempts (each identity has a marker key); 0: they are not
-- then, for each identity:
--   cool-off, ms: how long failures are remembered after the latest one
--   lockout duration, ms: how long a lock flag lives after it is set or renewed (the first
--     lockout's, with repeat offenders)
--   failure limit: the count at which the identity is locked; 0 to only count (Axes'
--     LOCK_OUT_AT_FAILURE = False)
--   how many failures to add (1, or the refused attempts coalesced by a lock cache)
--   lockout memory, ms: how long a lockout is remembered; 0: repeat offenders off, and the
--     next two are not sent
--   backoff: each remembered lockout multiplies the next one's duration by this
--   the longest lockout, ms
--   only when these are refused attempts: since, ms: how long ago the latest of them was
--     counted; a reset marker at most this old drops them
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
-- command. What every failure needs is read as a number once (tonumber parses a string twice);
-- what only a lock needs (its durations, backoff) is read again when it locks.
--
-- Returns {failures, lock_ms, started, lockouts} for each identity, one after the other:
-- lock_ms is the lock's duration, or -2 when not locked ({0, -2, 0, 0} when a reset since
-- they were counted dropped the refusals); started is 1 when this call started a lockout (no lock flag was
-- there), else 0; lockouts is the lockout's number within the memory when it locks with repeat
-- offenders, else 0.
-- Example, limit 3, third failure of an IP and of its pair with a username, logged:
--   EVALSHA <sha> 5 lockout:attempt:{31.71}ip=10.0.0.1 lockout:lock:{31.71}ip=10.0.0.1
--     lockout:attempt:{31.71}ip=10.0.0.1&username=bo lockout:lock:{31.71}ip=10.0.0.1&username=bo
--     lockout:log:{31.71}
--     2 1764380000 0
--     1800000 1800000 3 1 0 2 ua curl/8.5
--     1800000 1800000 3 1 0 0
--     1761788000000 2592000000 15625 ip 10.0.0.1 username bo outcome failure
--   -> {3, 1800000, 1, 0, 3, 1800000, 1, 0}
local n = tonumber(ARGV[1])
if not n or n < 1 or n ~= math.floor(n) then
  return redis.error_reply('fail.lua: expected n, the number of identities')
end
local now, refused = ARGV[2], ARGV[3] == '1'

-- Whole milliseconds from 1 to 365 days, or PEXPIRE and SET would fail after the first write.
local function is_duration(ms)
  return ms and ms >= 1 and ms <= 31536000000 and ms % 1 == 0
end

-- Every identity's arguments, checked before anything is written: where each identity's keys
-- and arguments start, its numbers, then, after them, the log's.
local key_at, arg_at, counts, limits, since = {}, {}, {}, {}, {}
local metadata_at, metadata_counts = {}, {}
local k, at = 1, 4
for i = 1, n do
  local cooloff_ms, lockout_ms = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local limit, count = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local memory_ms = tonumber(ARGV[at + 4])
  if not is_duration(cooloff_ms) or not is_duration(lockout_ms)
      or not (memory_ms == 0 or is_duration(memory_ms)) then
    return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
  end
  key_at[i], arg_at[i] = k, at
  k = k + 2
  at = at + 5
  if memory_ms ~= 0 then
    local backoff, longest_ms = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
    if not backoff or backoff < 1 or not is_duration(longest_ms) then
      return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
    end
    k = k + 1
    at = at + 2
  end
  if refused then
    since[i] = tonumber(ARGV[at])
    if not since[i] or since[i] < 0 then
      return redis.error_reply('fail.lua: refused attempts need how long ago they were counted, in ms')
    end
    k = k + 1
    at = at + 1
  end
  local metadata = tonumber(ARGV[at])
  if not limit or not count or not metadata or metadata % 2 ~= 0 or at + metadata > #ARGV then
    return redis.error_reply('fail.lua: expected a limit, a count and field/value metadata')
  end
  counts[i], limits[i], metadata_at[i], metadata_counts[i] = count, limit, at, metadata
  at = at + 1 + metadata
end
if #KEYS ~= k - 1 and #KEYS ~= k then
  return redis.error_reply('fail.lua: expected 2 to 4 keys per identity (and maybe a log)')
end
local log = KEYS[k]
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
  local record, lock = KEYS[key_at[i]], KEYS[key_at[i] + 1]
  local a = arg_at[i]
  local cooloff, lockout, memory = ARGV[a], ARGV[a + 1], ARGV[a + 4]
  local repeats = memory ~= '0'
  local meta_at = metadata_at[i]
  local failures, lock_ms, started, lockouts_count = 0, -2, 0, 0
  -- Reset since these refusals were counted: a marker no older than `since`.
  local reset_after = false
  if refused then
    local marker = KEYS[key_at[i] + (repeats and 3 or 2)]
    local life = redis.call('GET', marker)
    reset_after = life and (tonumber(life) or 0) - redis.call('PTTL', marker) <= since[i]
  end
  if not reset_after then
    -- The record's fields are short on purpose (docs/keys.md): a record is paid for once per
    -- tracked identity, and these names keep an IP's record in Redis' smallest allocation.
    failures = redis.call('HINCRBY', record, 'n', ARGV[a + 3])
    redis.call('PEXPIRE', record, cooloff)
    local metadata = metadata_counts[i]
    if failures == counts[i] then
      redis.call('HSET', record, 'f', now, 'l', now, unpack(ARGV, meta_at + 1, meta_at + metadata))
    else
      redis.call('HSET', record, 'l', now, unpack(ARGV, meta_at + 1, meta_at + metadata))
    end
    local limit = limits[i]
    if limit > 0 and failures >= limit then
      started = 1 - redis.call('EXISTS', lock)
      local length = tonumber(lockout)
      if repeats then
        local lockouts = KEYS[key_at[i] + 2]
        if started == 1 then
          lockouts_count = redis.call('INCR', lockouts)
          redis.call('PEXPIRE', lockouts, memory)
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
