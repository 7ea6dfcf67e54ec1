--[[
  Coalescing: offers a push as the newest of its branch for a target (coalesce.ts). Newest by the branch's
  graph (includes/ref-graph.lua), by arrival (UUIDv7 event ids) when the graph cannot tell. A value of the
  earlier format (an event id alone) compares by arrival.

  Input:
    KEYS[1]  the latest key (`<event id> <head>`)
    KEYS[2]  the branch's transitions (HASH)

    ARGV[1]  event id
    ARGV[2]  ttl (ms)
    ARGV[3]  old head
    ARGV[4]  new head

  Output:
    the id of the newest push after this one's offer
]]
--- @include "includes/ref-graph"
learn(KEYS[2], ARGV[3], ARGV[4], ARGV[2])
local v = redis.call('GET', KEYS[1])
if v then
  local id, head = string.match(v, '^(%S+) (%S+)$')
  if id == ARGV[1] then return id end
  local order = newer(KEYS[2], ARGV[4], head)
  if order == -1 or (order == 0 and id > ARGV[1]) then return id end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[4], 'PX', ARGV[2])
return ARGV[1]
