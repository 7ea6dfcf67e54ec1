--[[
  `staleAgainst(edges, delivered, old, new, ttl)`: a delivery about to be sent learns its transition, and its
  head is compared with the newest head delivered to the target (see ref-order.ts).

    edges      the ref's transitions (HASH)
    delivered  the head delivered to the target (`<head> <event id>`)

  Returns {1, event id, head} when a newer push was delivered already, else {0}.
]]
--- @include "includes/ref-graph"
local function staleAgainst(edges, delivered, old, new, ttl)
  learn(edges, old, new, ttl)
  local v = redis.call('GET', delivered)
  if not v then return {0} end
  local head, id = string.match(v, '^(%S+) (%S+)$')
  if head and newer(edges, head, new) == 1 then return {1, id, head} end
  return {0}
end
