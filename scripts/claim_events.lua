-- claim_events.lua: claim events of one shard for one consumer of a consumer group (a
-- webhook's), so that each event goes to one of the processes delivering them.
--
-- KEYS[1]   the events of one shard (stream)         lockout:events:3
-- ARGV[1]   the group                                 webhook:alerts
-- ARGV[2]   the consumer (one process)                host-4123-8f3a
-- ARGV[3]   how many events at most
-- ARGV[4]   after how long, ms, an event another consumer claimed and has not acknowledged
--           is taken over (that consumer's process is taken to be gone)
-- ARGV[5]   where a group made now starts: `$` (events from now on) the first time a process
--           asks, `0` after (the stream expired since, and the events appended after it are
--           all new)
-- ARGV[6]   the events' retention, ms: the lifetime of a stream made here to hold the group
-- ARGV[7]   `1`: also delete the group's consumers that hold nothing and were idle that long
--
-- Returns the events claimed (taken over first, then new, each {id, {field, value, ...}}) and
-- how many claimed by a consumer that went were trimmed before anyone delivered them.
-- Example:
--   EVALSHA <sha> 1 lockout:events:3 webhook:alerts host-4123-8f3a 100 300000 $ 2592000000 0
--     -> {{{"1764380000000-0", {"kind", "lockout_started", "subject", "ip=203.0.113.9"}}}, 0}
if #KEYS ~= 1 or #ARGV ~= 7 then
  return redis.error_reply('claim_events.lua: expected 1 key and 7 arguments')
end
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local count, stale, lifetime = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
if not count or count < 1 or not stale or stale < 1 or not lifetime or lifetime < 1 then
  return redis.error_reply('claim_events.lua: count, stale and lifetime must be numbers > 0')
end
local made = redis.pcall('XGROUP', 'CREATE', stream, group, ARGV[5], 'MKSTREAM')
if type(made) == 'table' and made.err and not string.find(made.err, '^BUSYGROUP') then
  return made
end
if redis.call('PTTL', stream) < 0 then
  redis.call('PEXPIRE', stream, lifetime)
end
local claimed, dropped = {}, 0
local taken = redis.call('XAUTOCLAIM', stream, group, consumer, stale, '0-0', 'COUNT', count)
for _, entry in ipairs(taken[2]) do
  if entry then
    claimed[#claimed + 1] = entry
  else
    dropped = dropped + 1
  end
end
dropped = dropped + #(taken[3] or {})
if #claimed < count then
  local new = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #claimed,
    'STREAMS', stream, '>')
  if new then
    for _, entry in ipairs(new[1][2]) do
      claimed[#claimed + 1] = entry
    end
  end
end
if ARGV[7] == '1' then
  for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
    local fields = {}
    for i = 1, #info, 2 do
      fields[info[i]] = info[i + 1]
    end
    if fields['pending'] == 0 and fields['idle'] >= stale and fields['name'] ~= consumer then
      redis.call('XGROUP', 'DELCONSUMER', stream, group, fields['name'])
    end
  end
end
return {claimed, dropped}
