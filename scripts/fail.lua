-- fail.lua: record failed logins (one, or several coalesced) of the identities of one shard
-- (their keys share a slot), and, when the attempt's IP is in that slot too, its password
-- spraying count and the attempt's access-log entry; all atomically, in one call.
--
-- KEYS, per identity (two, three or four), then optionally the IP's spraying keys (two, three
-- or four), then optionally the shard's access log:
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
--   spraying only with the spraying arguments (below), the IP's: its set of usernames' members
--            (lockout:spraying:{31.71}ip=10.0.0.1), its lock flag (lockout:spraying_lock:...;
--            in observe mode its would-be lock, lockout:spraying_would_lock:...),
--            its lockout count when its lockout memory is not 0 (lockout:spraying_lockouts:...),
--            and its reset marker (lockout:reset:{31.71}ip=10.0.0.1) for refused attempts
--   last     the access log (stream)                 lockout:log:{31.71}
-- Keys and arguments a call does not need are not sent: Redis pays for each one it receives
-- (docs/performance.md).
-- ARGV[1]  n: how many identities (0 for a call that counts only the IP's spraying)
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
-- then, with the IP's spraying count: 'spraying'; the username's member (a 64-bit integer; ''
-- for an attempt without a username, which adds none); the limit of distinct usernames; the
-- window, ms; the lockout duration, ms; the lockout memory, ms (0: off, and the next two are
-- not sent); backoff; the longest lockout, ms; for refused attempts, since (as an identity's)
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
-- duration. Spraying: the member joins the IP's set while the set holds fewer than the limit
-- (so it never holds more), and a set this call makes lives the window (from its first
-- username; not renewed). At the limit the IP's spraying lock is set, started and lengthened
-- as an identity's, and the set lives at least as long as the lock. Then the log entry, as
-- log.lua appends it.
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
-- Returns {failures, lock_ms, started, lockouts} for each identity, one after the other, then
-- with the spraying count {usernames, lock_ms, started, lockouts}:
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
-- The 10th username of an IP with a spraying limit of 10, its pair with the username counted
-- too (Climweb's ["username","ip_address"]):
--   EVALSHA <sha> 4 lockout:attempt:{31.71}ip=10.0.0.1&username=jo
--     lockout:lock:{31.71}ip=10.0.0.1&username=jo lockout:spraying:{31.71}ip=10.0.0.1
--     lockout:spraying_lock:{31.71}ip=10.0.0.1
--     1 1764380000 0
--     1800000 1800000 5 1 0 0
--     spraying 630883312451508310 10 3600000 1800000 0
--   -> {1, -2, 0, 0, 10, 1800000, 1, 0}
local n = tonumber(ARGV[1])
if not n or n < 0 or n ~= math.floor(n) then
  return redis.error_reply('fail.lua: expected n, the number of identities')
end
local now, refused = ARGV[2], ARGV[3] == '1'

-- Whole milliseconds from 1 to 365 days, or PEXPIRE and SET would fail after the first write.
local function is_duration(ms)
  return ms and ms >= 1 and ms <= 31536000000 and ms % 1 == 0
end

-- Whether a cool-off (or window), a lockout duration and a lockout memory are usable, and, when
-- the memory is not 0, the backoff and the longest lockout at `at`.
local function usable(cooloff_ms, lockout_ms, memory_ms, at)
  if not is_duration(cooloff_ms) or not is_duration(lockout_ms)
      or not (memory_ms == 0 or is_duration(memory_ms)) then
    return false
  end
  if memory_ms == 0 then
    return true
  end
  local backoff = tonumber(ARGV[at])
  return backoff and backoff >= 1 and is_duration(tonumber(ARGV[at + 1]))
end

local function durations_error()
  return redis.error_reply('fail.lua: durations must be whole numbers of ms, from 1 to 365 days')
end

-- Every identity's arguments, checked before anything is written: where each identity's keys
-- and arguments start, its numbers, then, after them, the spraying count's and the log's.
local key_at, arg_at, counts, limits, since = {}, {}, {}, {}, {}
local metadata_at, metadata_counts = {}, {}

-- How long ago refused attempts were counted, in ms, at `at`; nil if unusable.
local function since_at(at)
  local ms = tonumber(ARGV[at])
  return ms and ms >= 0 and ms or nil
end

local function since_error()
  return redis.error_reply('fail.lua: refused attempts need how long ago they were counted, in ms')
end
local k, at = 1, 4
for i = 1, n do
  local limit, count = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local memory_ms = tonumber(ARGV[at + 4])
  if not usable(tonumber(ARGV[at]), tonumber(ARGV[at + 1]), memory_ms, at + 5) then
    return durations_error()
  end
  key_at[i], arg_at[i] = k, at
  k = k + 2
  at = at + 5
  if memory_ms ~= 0 then
    k = k + 1
    at = at + 2
  end
  if refused then
    since[i] = since_at(at)
    if not since[i] then
      return since_error()
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
local spraying_key, spraying_arg, spraying_since
if ARGV[at] == 'spraying' then
  local member, limit = ARGV[at + 1], tonumber(ARGV[at + 2])
  if not member or not (member == '' or (#member <= 20 and member:match('^%-?%d+$')))
      or not limit or limit < 1 or limit ~= math.floor(limit) then
    return redis.error_reply('fail.lua: spraying needs a member (or none) and a limit from 1')
  end
  local memory_ms = tonumber(ARGV[at + 5])
  if not usable(tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), memory_ms, at + 6) then
    return durations_error()
  end
  spraying_key, spraying_arg = k, at
  k = k + 2
  at = at + 6
  if memory_ms ~= 0 then
    k = k + 1
    at = at + 2
  end
  if refused then
    spraying_since = since_at(at)
    if not spraying_since then
      return since_error()
    end
    k = k + 1
    at = at + 1
  end
elseif n == 0 then
  return redis.error_reply('fail.lua: expected n, the number of identities')
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

-- Sets `lock`, the flag of an identity (or of an IP's spraying) at or over its limit: a lockout
-- starts where none was. With repeat offenders (`lockouts`, the count's key; else false) a
-- lockout started counts one more and the count lives `memory`, and the lock lasts `lockout`
-- times backoff^(count-1), at most `longest`; a renewal keeps the current lockout's length.
-- `record` is made to live as long as the lock when it would not (`lives`: its TTL, ms).
-- Returns the lock's length, whether it started (1 or 0), and the lockout's number (0 without
-- repeat offenders).
local function set_lock(lock, lockouts, record, lives, lockout, memory, backoff, longest)
  local started, number = 1 - redis.call('EXISTS', lock), 0
  local length = tonumber(lockout)
  if lockouts then
    if started == 1 then
      number = redis.call('INCR', lockouts)
      redis.call('PEXPIRE', lockouts, memory)
    else
      number = tonumber(redis.call('GET', lockouts)) or 1
    end
    length = math.min(math.floor(length * tonumber(backoff) ^ (number - 1)), tonumber(longest))
    lockout = string.format('%d', length)
  end
  redis.call('SET', lock, '1', 'PX', lockout)
  if length > lives then
    redis.call('PEXPIRE', record, lockout)
  end
  return length, started, number
end

-- Whether `marker`, a reset marker, tells of a reset at most `since` ms ago: after the refused
-- attempts it drops were counted.
local function reset_since(marker, since)
  local life = redis.call('GET', marker)
  return life and (tonumber(life) or 0) - redis.call('PTTL', marker) <= since
end

local replies = {}
for i = 1, n do
  local record, lock = KEYS[key_at[i]], KEYS[key_at[i] + 1]
  local a = arg_at[i]
  local cooloff, lockout, memory = ARGV[a], ARGV[a + 1], ARGV[a + 4]
  local repeats = memory ~= '0'
  local meta_at = metadata_at[i]
  local failures, lock_ms, started, lockouts_count = 0, -2, 0, 0
  local marker = refused and KEYS[key_at[i] + (repeats and 3 or 2)]
  if not (marker and reset_since(marker, since[i])) then
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
      lock_ms, started, lockouts_count = set_lock(lock, repeats and KEYS[key_at[i] + 2], record,
        tonumber(cooloff), lockout, memory, ARGV[a + 5], ARGV[a + 6])
    end
  end
  replies[4 * i - 3] = failures
  replies[4 * i - 2] = lock_ms
  replies[4 * i - 1] = started
  replies[4 * i] = lockouts_count
end

if spraying_key then
  local set, lock = KEYS[spraying_key], KEYS[spraying_key + 1]
  local a = spraying_arg
  local member, limit, memory = ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 5]
  local repeats = memory ~= '0'
  local usernames, lock_ms, started, lockouts_count = 0, -2, 0, 0
  local marker = refused and KEYS[spraying_key + (repeats and 3 or 2)]
  if not (marker and reset_since(marker, spraying_since)) then
    usernames = redis.call('SCARD', set)
    if member ~= '' and usernames < limit and redis.call('SADD', set, member) == 1 then
      usernames = usernames + 1
      if usernames == 1 then
        redis.call('PEXPIRE', set, ARGV[a + 3])
      end
    end
    if usernames >= limit then
      lock_ms, started, lockouts_count = set_lock(lock, repeats and KEYS[spraying_key + 2], set,
        redis.call('PTTL', set), ARGV[a + 4], memory, ARGV[a + 6], ARGV[a + 7])
    end
  end
  replies[4 * n + 1] = usernames
  replies[4 * n + 2] = lock_ms
  replies[4 * n + 3] = started
  replies[4 * n + 4] = lockouts_count
end

if log then
  redis.call('XADD', log, 'MINID', '~', ARGV[at], '*', unpack(ARGV, at + 3))
  redis.call('PEXPIRE', log, ARGV[at + 1])
  redis.call('XTRIM', log, 'MAXLEN', '~', ARGV[at + 2])
end
return replies
