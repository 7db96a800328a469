-- trim_log.lua: remove access-log entries at least a given age old (Axes' axes_reset_logs).
--
-- KEYS[1]  the access log (stream)                  lockout:log
-- ARGV[1]  age, ms; inclusive: an entry exactly that old goes, and 0 removes everything
--
-- Returns the number of entries removed.
-- Example, everything older than 30 days:
--   EVALSHA <sha> 1 lockout:log 2592000000                                   -> 42
if #KEYS ~= 1 or #ARGV ~= 1 then
  return redis.error_reply('trim_log.lua: expected 1 key and 1 argument')
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
return redis.call('XTRIM', KEYS[1], 'MINID', math.max(now - tonumber(ARGV[1]) + 1, 0))
