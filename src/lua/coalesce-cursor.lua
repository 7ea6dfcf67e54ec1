--[[
  Moves a shard's coalescing cursor (the event index score caught up to) forward, never back: workers catch
  up concurrently.

  Input:
    KEYS[1]  the cursor
    ARGV[1]  the score caught up to

  Output:
    1
]]
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
