-- import.lua: merge one attempt record counted elsewhere (Django Axes' database rows, by
-- `manage.py lockout_import_axes`) into an identity's record and lock, atomically.
--
-- KEYS[1]   the identity's attempt record (hash)    lockout:attempt:{31.71}ip=10.0.0.1
-- KEYS[2]   the identity's lock flag (string)       lockout:lock:{31.71}ip=10.0.0.1
-- ARGV[1]   failures: a whole number from 1
-- ARGV[2]   the first failure's time, seconds since the Unix epoch (the importer's clock)
-- ARGV[3]   the latest failure's time, likewise; not before the first
-- ARGV[4]   expires in, ms (1 to 365 days): how long the record is remembered from now
-- ARGV[5]   locked for, ms (1 to 365 days), or 0: not locked
-- ARGV[6..] the latest metadata, field/value pairs, each only when given: 'ua' user agent,
--           'p' path
--
-- The import takes the larger of what is there and what it brings, so that importing the same
-- records twice changes nothing, and a count that went on since is not lowered: the count is
-- the higher of the two, the first failure the earlier, the latest failure the later (with its
-- metadata: the imported user agent and path replace those of an older latest failure), the
-- record's and the lock's expiry the later. Nothing is ever shortened, and the record outlives
-- its lock as fail.lua keeps it.
--
-- Every argument is checked before anything is written, and each key gets its TTL right after
-- the command that may create it: no error can leave a key without expiry.
--
-- Returns {failures, lock_ms, started}: the record's count after the import, the lock's
-- remaining time in ms (-2 when not locked), and 1 when this call set a lock where none was.
-- Example, 4 failures of an IP, the latest 5 minutes ago, locked for the 25 minutes left of a
-- 30-minute cool-off:
--   EVALSHA <sha> 2 lockout:attempt:{31.71}ip=10.0.0.1 lockout:lock:{31.71}ip=10.0.0.1
--     4 1764379000 1764379700 1500000 1500000 ua curl/8.5 p /admin/login/
--   -> {4, 1500000, 1}
if #KEYS ~= 2 or #ARGV < 5 or #ARGV % 2 ~= 1 then
  return redis.error_reply('import.lua: expected 2 keys, 5 numbers and field/value pairs')
end

-- Numbers are plain digits (at most 15: exact in a Lua number), so that each string can be
-- written as it came: HINCRBY, PEXPIRE and SET PX refuse '4.0' and '1e3'.
local function whole(text, low, high)
  local value = text:match('^%d+$') and #text <= 15 and tonumber(text)
  return value and value >= low and value <= high and value
end

local failures = whole(ARGV[1], 1, 1e15)
local first = whole(ARGV[2], 0, 1e15)
local last = first and whole(ARGV[3], first, 1e15)
local expires_ms, lock_ms = whole(ARGV[4], 1, 31536000000), whole(ARGV[5], 0, 31536000000)
if not failures then
  return redis.error_reply('import.lua: failures must be a whole number from 1')
end
if not last then
  return redis.error_reply('import.lua: the failure times must be whole seconds, first <= last')
end
if not expires_ms or not lock_ms then
  return redis.error_reply('import.lua: durations must be whole numbers of ms, up to 365 days')
end
for i = 6, #ARGV, 2 do
  if ARGV[i] ~= 'ua' and ARGV[i] ~= 'p' then
    return redis.error_reply('import.lua: metadata fields are ua and p')
  end
end

local record, lock = KEYS[1], KEYS[2]
local old = redis.call('HMGET', record, 'n', 'f', 'l')
local old_failures, old_first, old_last = tonumber(old[1]), tonumber(old[2]), tonumber(old[3])
local stamps = {'n', ARGV[1]}
if old_failures and old_failures > failures then
  stamps[2] = old[1]
end
if not old_first or first < old_first then
  stamps[#stamps + 1] = 'f'
  stamps[#stamps + 1] = ARGV[2]
end
if not old_last or last >= old_last then
  stamps[#stamps + 1] = 'l'
  stamps[#stamps + 1] = ARGV[3]
  for i = 6, #ARGV do
    stamps[#stamps + 1] = ARGV[i]
  end
end
redis.call('HSET', record, unpack(stamps))

local lives_ms, lives = expires_ms, ARGV[4]
if lock_ms > expires_ms then
  lives_ms, lives = lock_ms, ARGV[5]
end
if redis.call('PTTL', record) < lives_ms then
  redis.call('PEXPIRE', record, lives)
end

local started = 0
local lock_ttl = redis.call('PTTL', lock)
if lock_ms > 0 and lock_ttl < lock_ms then
  if lock_ttl == -2 then
    started = 1
  end
  redis.call('SET', lock, '1', 'PX', ARGV[5])
  lock_ttl = lock_ms
end
return {tonumber(stamps[2]), lock_ttl, started}
