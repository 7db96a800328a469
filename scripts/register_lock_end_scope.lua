-- register_lock_end_scope.lua: note that a scope has lock ends to tell (see
-- schedule_lock_ends.lua), so that every instance sweeps them (end_lockouts.lua), each scope
-- only while its latest lock end is recent.
--
-- KEYS[1]   the scopes with lock ends (sorted set: scope name by its latest end, ms since
--           the epoch)                                lockout:lock_end_scopes
-- ARGV[1]   the end of a lock scheduled in the scope, ms since the epoch
-- ARGV[2]   the scope's name
-- ARGV[3]   how long the set lives at least, ms
-- ARGV[4]   ms since the epoch: scopes whose latest end is before it are dropped (at most
--           100 per call; the set's expiry takes what is left when no scope locks)
--
-- A scope's score only grows, and so does the set's expiry. Only ZRANGEBYSCORE and ZREM
-- prune, commands the documented ACL already allows.
--
-- Returns 1.
-- Example:
--   EVALSHA <sha> 1 lockout:lock_end_scopes 1764381800000 site-a 3600000 1764378200000 -> 1
if #KEYS ~= 1 or #ARGV ~= 4 then
  return redis.error_reply('register_lock_end_scope.lua: expected 1 key, an end, a scope, a lifetime and a cut-off')
end
local ends = tonumber(ARGV[1])
local lifetime = tonumber(ARGV[3])
local cutoff = tonumber(ARGV[4])
if not ends or not cutoff or not lifetime or lifetime < 1 or lifetime ~= math.floor(lifetime) then
  return redis.error_reply('register_lock_end_scope.lua: the end, the lifetime and the cut-off must be ms')
end
for _, stale in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[1], stale)
end
local old = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not old or old < ends then
  redis.call('ZADD', KEYS[1], ends, ARGV[2])
end
if redis.call('PTTL', KEYS[1]) < lifetime then
  redis.call('PEXPIRE', KEYS[1], lifetime)
end
return 1
