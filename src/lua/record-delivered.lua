--[[
  A delivery that succeeded, in one call: its state and attempt recorded on the event (as record-attempt.lua),
  and, for a push, its head made the branch's delivered head and what it built remembered for the loop
  guard's chain rule. Every key is in the event's slot.

  Input:
    KEYS[1]          the event hash
    KEYS[2], KEYS[3] with ARGV[6] '1': the branch's transitions and the head delivered to the target
    KEYS[…]          then the chain records (ARGV[15] heads, then the commits it builds on; none: no record)

    ARGV[1..5]   as record-attempt.lua
    ARGV[6]      '1': a push to one branch, whose head is recorded; '': none
    ARGV[7..9]   its old head, new head, ttl (ms)
    ARGV[10]     the event id
    ARGV[11..14] the chain record's actor digest, sent at (ms), ttl (ms), received at (ms)
    ARGV[15]     heads, the number of commits it built (0: no chain record)

  Output:
    as record-attempt.lua
]]
--- @include "includes/record-attempt"
--- @include "includes/chain-record"
--- @include "includes/delivered-head"
local written = recordAttempt(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
local first = 2
if ARGV[6] == '1' then
  deliveredHead(KEYS[2], KEYS[3], ARGV[7], ARGV[8], ARGV[9], ARGV[10])
  first = 4
end
local heads = tonumber(ARGV[15])
if heads > 0 then
  recordChain(first, heads, #KEYS, ARGV[11], ARGV[12], ARGV[13], ARGV[10], ARGV[14])
end
return written
