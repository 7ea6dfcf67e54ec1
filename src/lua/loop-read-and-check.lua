--[[
  The event's read, the loop guard and, for a single-branch push, the branch's order, in one call, for a
  delivery whose guard keys were worked out when it was accepted (JobGuard). An expired event runs neither.

  Input:
    KEYS[1]     the event hash
    KEYS[2], KEYS[3]  with ARGV[13] '1': the branch's transitions and the head delivered to the target
                (as ref-order-stale.lua)
    KEYS[…]     then the guard's keys, as `guard` in includes/loop-guard.lua (none: the static verdict stands)
    ARGV[1..12] as `guard`
    ARGV[13]    '1': check the branch's order; absent or '': do not
    ARGV[14..16]  then the branch's old head, new head and the transitions' ttl (ms)
    ARGV[17]    '1': the caller holds the event already (local-handoff.ts): do not return its fields

  Output:
    {-1} when the event has expired;
    else {{code, a, b}, HGETALL of the event ({} with ARGV[17]), order}, with {6} (the static verdict) when
    there are no guard keys, and order as ref-order-stale.lua ({} without an order check)
]]
--- @include "includes/loop-guard"
--- @include "includes/ref-order-stale"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local ordered = ARGV[13] == '1'
local first = ordered and 4 or 2
local verdict = {6}
if #KEYS >= first then verdict = guard(first) end
local order = {}
if ordered then order = staleAgainst(KEYS[2], KEYS[3], ARGV[14], ARGV[15], ARGV[16]) end
local fields = {}
if ARGV[17] ~= '1' then fields = redis.call('HGETALL', KEYS[1]) end
return {verdict, fields, order}
