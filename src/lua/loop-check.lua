--[[
  The loop guard's Redis rules of one delivery, in one call (loop-guard.ts).

  Input:
    KEYS, ARGV  as `guard` in includes/loop-guard.lua, from KEYS[1]

  Output:
    {code, a, b} as `guard`
]]
--- @include "includes/loop-guard"
return guard(1)
