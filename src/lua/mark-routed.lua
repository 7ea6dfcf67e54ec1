--[[
  On a cluster, after route-event.lua wrote an event's routed record in its repository's shard: the received
  event (in its inbox's shard) is replaced by a pointer to that record (kept as long as the event), its index
  entry stays (ops list and find it by the id the ingress answered with), and the inbox entry is acknowledged
  and deleted. A duplicate (no routed record) records its decision on the received event instead. Running it
  twice changes nothing more.

  KEYS: 1 received event hash, 2 its routed-as pointer, 3 inbox stream.
  ARGV: 1 event id, 2 state ('routed' | 'quarantined' | 'duplicate'), 3 routed id ('' for a duplicate),
        4 duplicate of ('' = none), 5 routed at (ms), 6 inbox entry id, 7 consumer group, 8 event retention
        (ms), for a pointer to an event whose record has no expiry left to copy.
]]
local rcall = redis.call
if ARGV[3] ~= '' then
  local ttl = rcall('PTTL', KEYS[1])
  if ttl < 0 then ttl = tonumber(ARGV[8]) end
  if rcall('EXISTS', KEYS[1]) == 1 or rcall('EXISTS', KEYS[2]) == 0 then
    rcall('SET', KEYS[2], ARGV[3], 'PX', ttl)
  end
  rcall('DEL', KEYS[1])
elseif rcall('EXISTS', KEYS[1]) == 1 then
  rcall('HSET', KEYS[1], 'state', ARGV[2], 'routedAt', ARGV[5])
  if ARGV[4] ~= '' then rcall('HSET', KEYS[1], 'duplicateOf', ARGV[4]) end
end
rcall('XACK', KEYS[3], ARGV[7], ARGV[6])
rcall('XDEL', KEYS[3], ARGV[6])
return 1
