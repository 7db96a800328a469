-- log.lua: append one entry to the access log, dropping entries past the retention.
--
-- KEYS[1]   the access log (stream)                 lockout:log
-- ARGV[1]   retention, ms
-- ARGV[2..] field, value, field, value ...          (ip, username, user_agent, path, outcome)
--
-- The entry's ID is Redis' clock (ms since the epoch), which is the entry's time. Entries older
-- than the retention are trimmed (approximately, a node at a time: readers filter by ID) and
-- the stream itself expires after a retention without appends.
--
-- Returns the new entry's ID.
-- Example:
--   EVALSHA <sha> 1 lockout:log 2592000000 ip 203.0.113.9 username alice outcome failure
--                                                                    -> "1764380000000-0"
if #KEYS ~= 1 or #ARGV < 3 or #ARGV % 2 ~= 1 then
  return redis.error_reply('log.lua: expected 1 key, a retention and field/value pairs')
end
local retention = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local id = redis.call('XADD', KEYS[1], 'MINID', '~', math.max(now - retention, 0), '*',
  unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], retention)
return id
