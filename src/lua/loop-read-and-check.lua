--[[
  The event's read and the loop guard in one call, for a delivery whose guard keys were worked out when it
  was accepted (JobGuard). An expired event runs no guard.

  Input:
    KEYS[1]     the event hash
    KEYS[2 …]   the guard's keys, as `guard` in includes/loop-guard.lua (none: the static verdict stands)
    ARGV        as `guard`

  Output:
    {-1} when the event has expired;
    else {{code, a, b}, HGETALL of the event}, with {6} (the static verdict) when there are no guard keys
]]
--- @include "includes/loop-guard"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local verdict = {6}
if #KEYS > 1 then verdict = guard(2) end
return {verdict, redis.call('HGETALL', KEYS[1])}
