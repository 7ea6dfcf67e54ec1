--[[
  The target answered: closes its circuit and resets its failure count.

  Input:
    KEYS[1]  the target's circuit hash

  Output:
    1 when there was a state to clear, else 0
]]
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DEL', KEYS[1]) return 1 end
return 0
