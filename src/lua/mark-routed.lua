--[[
  On a cluster, after route-event.lua wrote an event's routed record in its repository's shard: the received
  event (in its inbox's shard) records the decision and points at the routed record, leaves its shard's event
  index (the routed record is listed in its own), drops its body (the routed record has it), and the inbox
  entry is acknowledged and deleted. Running it twice changes nothing more.

  KEYS: 1 received event hash, 2 event index, 3 inbox stream.
  ARGV: 1 event id, 2 state ('routed' | 'quarantined' | 'duplicate'), 3 routed id ('' for a duplicate),
        4 duplicate of ('' = none), 5 routed at (ms), 6 inbox entry id, 7 consumer group.
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 1 then
  rcall('HSET', KEYS[1], 'state', ARGV[2], 'routedAt', ARGV[5])
  if ARGV[3] ~= '' then
    rcall('HSET', KEYS[1], 'routedAs', ARGV[3])
    rcall('HDEL', KEYS[1], 'body')
    rcall('ZREM', KEYS[2], ARGV[1])
  end
  if ARGV[4] ~= '' then rcall('HSET', KEYS[1], 'duplicateOf', ARGV[4]) end
end
rcall('XACK', KEYS[3], ARGV[7], ARGV[6])
rcall('XDEL', KEYS[3], ARGV[6])
return 1
