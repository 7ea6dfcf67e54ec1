--[[
  A delivery about to be sent: learn its transition and compare its head with the newest head delivered to
  the target (includes/ref-order-stale.lua).

  Input:
    KEYS[1]  the ref's transitions (HASH)
    KEYS[2]  the head delivered to the target (`<head> <event id>`)

    ARGV[1]  old head
    ARGV[2]  new head
    ARGV[3]  ttl (ms)

  Output:
    {1, event id, head} when a newer push was delivered already, else {0}
]]
--- @include "includes/ref-order-stale"
return staleAgainst(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
