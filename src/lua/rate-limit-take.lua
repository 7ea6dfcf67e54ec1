--[[
  Takes one request from a target's shared rate limit (shared-rate-limit.ts): a fixed window; the first
  request of a window starts it, the max+1st learns how long is left.

  Input:
    KEYS[1]  the target's window counter

    ARGV[1]  requests allowed per window
    ARGV[2]  window (ms)

  Output:
    0 when the request may go now, else how many ms until the window allows one
]]
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end
  return left
end
return 0
