--[[
  `recordChain(first, heads, last, actor, sentAt, ttl, eventId, received)`: a delivered event's heads remember
  who pushed each commit it built and the chain's turn count, for the loop guard's chain rule.

    KEYS[first .. first+heads-1]  the records of the commits it built
    KEYS[first+heads .. last]     the records of the commits it builds on
    actor     actor digest
    sentAt    sent at (ms)
    ttl       how long the records are kept (ms)
    eventId   event id
    received  received at (ms)

  Returns the turn written (0 when it follows no commit).
]]
--- @include "includes/chain-turn"
local function recordChain(first, heads, last, actor, sentAt, ttl, eventId, received)
  local best = turn(first + heads, last, actor, tonumber(received))
  for i = first, first + heads - 1 do
    redis.call('SET', KEYS[i], actor .. ' ' .. best .. ' ' .. sentAt .. ' ' .. eventId, 'PX', ttl)
  end
  return best
end
