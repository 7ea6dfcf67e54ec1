--[[
  The order of pushes to a ref by the ref's graph (ref-order.ts): each ref keeps a HASH of its recent
  transitions (old head → new head).

  `learn(edges, old, new, ttl)` records a transition; past EDGE_CAP transitions the HASH starts again
  (ordering then falls back to arrival until it has learnt again).
  `newer(edges, a, b)` is 1 when head `a` is reachable from head `b` (a is newer), -1 when b is reachable
  from a, 0 when a walk of at most MAX_WALK steps cannot tell.
]]
local EDGE_CAP = 512
local MAX_WALK = 64
local function learn(edges, old, new, ttl)
  if old == '' or new == '' then return end
  if redis.call('HLEN', edges) >= EDGE_CAP then redis.call('DEL', edges) end
  redis.call('HSET', edges, old, new)
  redis.call('PEXPIRE', edges, ttl)
end
local function reaches(edges, from, to)
  local at = from
  for _ = 1, MAX_WALK do
    at = redis.call('HGET', edges, at)
    if not at then return false end
    if at == to then return true end
  end
  return false
end
local function newer(edges, a, b)
  if a == b or a == '' or b == '' then return 0 end
  if reaches(edges, b, a) then return 1 end
  if reaches(edges, a, b) then return -1 end
  return 0
end
