--[[
  The ingress's one call per webhook: dedupe on the request, then the received event, its index entry, its
  dedupe keys and its inbox entry, atomically. Nothing here is parsed: the fan-out (src/fanout/) reads the
  inbox, parses, routes and writes the delivery jobs (route-event.lua). Redis runs a script to its end and
  refuses one whose first write meets `maxmemory`, so either all of it exists or nothing does (503).

  A dedupe key's value is `<tag>|<event id>`; these two carry no tag, so any value makes the request a copy of
  the event it names (delivery id: Bitbucket's retry; body hash: a replayed body).

  KEYS: 1 event hash, 2 event index, 3 delivery-id dedupe key, 4 body-hash dedupe key, 5 inbox stream.
  ARGV: 1 event id, 2 received at (ms), 3 event retention (ms), 4 meta JSON, 5 headers JSON, 6 body encoding,
        7 body, 8 dedupe keys' TTL (seconds), 9 the body's SHA-256 (the fan-out's content key of a body).
  Returns {'duplicate', holder event id} for a copy, {'received', ''} otherwise.
]]
local rcall = redis.call
for i = 3, 4 do
  local held = rcall('GET', KEYS[i])
  if held then
    local bar = string.find(held, '|', 1, true)
    return {'duplicate', bar and string.sub(held, bar + 1) or held}
  end
end
rcall('HSET', KEYS[1], 'meta', ARGV[4], 'hdr', ARGV[5], 'enc', ARGV[6], 'body', ARGV[7], 'ok', ARGV[2],
  'state', 'received', 'bodyHash', ARGV[9])
rcall('PEXPIRE', KEYS[1], ARGV[3])
rcall('ZADD', KEYS[2], ARGV[2], ARGV[1])
local value = '|' .. ARGV[1]
rcall('SET', KEYS[3], value, 'EX', ARGV[8])
rcall('SET', KEYS[4], value, 'EX', ARGV[8])
rcall('XADD', KEYS[5], '*', 'id', ARGV[1])
return {'received', ''}
