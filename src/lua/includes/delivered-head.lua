--[[
  `deliveredHead(edges, delivered, old, new, ttl, eventId)`: a delivered push's head becomes the branch's
  delivered head unless a newer one is already there (an older push sent late does not move it back).

    edges      the ref's transitions (HASH)
    delivered  the head delivered to the target (`<head> <event id>`)

  Returns 1 when the delivered head moved, 0 when a newer one was there.
]]
--- @include "includes/ref-graph"
local function deliveredHead(edges, delivered, old, new, ttl, eventId)
  learn(edges, old, new, ttl)
  local v = redis.call('GET', delivered)
  if v then
    local head = string.match(v, '^(%S+) ')
    if head and newer(edges, head, new) == 1 then return 0 end
  end
  redis.call('SET', delivered, new .. ' ' .. eventId, 'PX', ttl)
  return 1
end
