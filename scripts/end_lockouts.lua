-- end_lockouts.lua: take lock ends that ran out from their schedule (see
-- schedule_lock_ends.lua), each only if it is still the one read, so that of the processes
-- sweeping at once exactly one tells each end, and a lock started again since is left to its
-- new end.
--
-- KEYS[1]   the lock ends of one shard                lockout:lock_ends:3
-- ARGV      tag, end, tag, end ...  (each end as ZRANGEBYSCORE ... WITHSCORES answered it)
--
-- The caller has found each of these locks gone; a reset deletes its identities' ends before
-- their locks (its `lockout_reset` tells of them instead).
--
-- Returns the tags taken.
-- Example:
--   EVALSHA <sha> 1 lockout:lock_ends:3 ip=203.0.113.9 1764381800000 -> ["ip=203.0.113.9"]
if #KEYS ~= 1 or #ARGV < 2 or #ARGV % 2 ~= 0 then
  return redis.error_reply('end_lockouts.lua: expected 1 key and tag/end pairs')
end
local taken = {}
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZREM', KEYS[1], ARGV[i])
    taken[#taken + 1] = ARGV[i]
  end
end
return taken
