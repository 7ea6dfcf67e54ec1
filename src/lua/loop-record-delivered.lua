--[[
  A delivered event's heads: remembers who pushed each commit it built and the chain's turn count, for the
  loop guard's chain rule.

  Input:
    KEYS[1..heads]   the records of the commits it built
    KEYS[heads+1 …]  the records of the commits it builds on

    ARGV[1]  actor digest
    ARGV[2]  sent at (ms)
    ARGV[3]  how long the records are kept (ms)
    ARGV[4]  event id
    ARGV[5]  received at (ms)
    ARGV[6]  heads, the number of commits it built

  Output:
    the turn written (0 when it follows no commit)
]]
--- @include "includes/chain-turn"
local heads = tonumber(ARGV[6])
local best = turn(heads + 1, #KEYS, ARGV[1], tonumber(ARGV[5]))
for i = 1, heads do
  redis.call('SET', KEYS[i], ARGV[1] .. ' ' .. best .. ' ' .. ARGV[2] .. ' ' .. ARGV[4], 'PX', ARGV[3])
end
return best
