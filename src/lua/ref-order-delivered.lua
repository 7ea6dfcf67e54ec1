--[[
  A delivered push: its head becomes the delivered head unless a newer one is already there (an older push
  sent late does not move it back).

  Input:
    KEYS[1]  the ref's transitions (HASH)
    KEYS[2]  the head delivered to the target (`<head> <event id>`)

    ARGV[1]  old head
    ARGV[2]  new head
    ARGV[3]  ttl (ms)
    ARGV[4]  event id

  Output:
    1 when the delivered head moved, 0 when a newer one was there
]]
--- @include "includes/ref-graph"
learn(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
local v = redis.call('GET', KEYS[2])
if v then
  local head = string.match(v, '^(%S+) ')
  if head and newer(KEYS[1], head, ARGV[2]) == 1 then return 0 end
end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
return 1
