--[[
  A delivery about to be sent: learn its transition and compare its head with the newest head delivered to
  the target.

  Input:
    KEYS[1]  the ref's transitions (HASH)
    KEYS[2]  the head delivered to the target (`<head> <event id>`)

    ARGV[1]  old head
    ARGV[2]  new head
    ARGV[3]  ttl (ms)

  Output:
    {1, event id, head} when a newer push was delivered already, else {0}
]]
--- @include "includes/ref-graph"
learn(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local v = redis.call('GET', KEYS[2])
if not v then return {0} end
local head, id = string.match(v, '^(%S+) (%S+)$')
if head and newer(KEYS[1], head, ARGV[2]) == 1 then return {1, id, head} end
return {0}
