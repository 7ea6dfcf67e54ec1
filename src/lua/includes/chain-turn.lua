--[[
  `turn(from, to, actor, received)`: the turn a push makes in a causal chain, from the records of the commits
  it builds on (KEYS[from..to]), each `<actor digest> <turns> <delivered at ms> <event id>`. A commit
  delivered after the push was received cannot have caused it. The same actor continues the chain
  (turns + 1); anyone else starts one (1). Returns the highest turn and the index (1-based, within the range)
  of the commit it follows.
]]
local function turn(from, to, actor, received)
  local best, at = 0, 0
  for i = from, to do
    local v = redis.call('GET', KEYS[i])
    if v then
      local who, turns, deliveredAt = string.match(v, '^(%S+) (%d+) (%d+)')
      if who and tonumber(deliveredAt) <= received then
        local t = 1
        if who == actor then t = tonumber(turns) + 1 end
        if t > best then best, at = t, i - from + 1 end
      end
    end
  end
  return best, at
end
