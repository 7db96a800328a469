-- log.lua: append one entry to the access log, dropping entries past the retention.
--
-- KEYS[1]   the access log (stream)                 lockout:log:7
-- ARGV[1]   the oldest entry ID to keep: now - retention, ms since the Unix epoch (the caller's
--           clock)
-- ARGV[2]   retention, ms
-- ARGV[3]   the most entries this shard keeps (approximately: whole stream nodes are trimmed)
-- ARGV[4..] field, value, field, value ...          (ip, username, user_agent, path, outcome)
--
-- The entry's ID is Redis' clock (ms since the epoch), which is the entry's time. Entries older
-- than the retention are trimmed (approximately, a node at a time: readers filter by ID), the
-- oldest beyond the size bound too, so that a flood of failures cannot fill Redis; the stream
-- itself expires after a retention without appends.
--
-- The retention and the size are checked before anything is written, and nothing stands between the XADD
-- that may create the stream and its PEXPIRE: no error leaves the stream without expiry.
--
-- Returns the new entry's ID.
-- Example:
--   EVALSHA <sha> 1 lockout:log:7 1761788000000 2592000000 62500 ip 203.0.113.9
--                                   username alice outcome failure -> "1764380000000-0"
if #KEYS ~= 1 or #ARGV < 5 or #ARGV % 2 ~= 1 then
  return redis.error_reply('log.lua: expected 1 key, a minimum ID, a retention, a size and field/value pairs')
end
local retention, size = tonumber(ARGV[2]), tonumber(ARGV[3])
if not retention or retention < 1 or retention > 31536000000 or retention ~= math.floor(retention) then
  return redis.error_reply('log.lua: the retention must be a whole number of ms, from 1 to 365 days')
end
if not size or size < 1 or size ~= math.floor(size) then
  return redis.error_reply('log.lua: the size must be a whole number > 0')
end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[3])
return id
