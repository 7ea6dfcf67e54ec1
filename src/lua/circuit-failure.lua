--[[
  A retryable failure of a delivery to a target: counts it, and opens the circuit (again) at the threshold,
  or when it was open already (a failed probe).

  Input:
    KEYS[1]  the target's circuit hash

    ARGV[1]  now (ms)
    ARGV[2]  failure threshold
    ARGV[3]  cooldown (ms)
    ARGV[4]  how long the state is kept (ms)

  Output:
    the cooldown (ms) when the circuit opened, else 0
]]
local now = tonumber(ARGV[1])
local fails = redis.call('HINCRBY', KEYS[1], 'fails', 1)
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if openUntil > 0 or fails >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[3]), 'probeUntil', 0)
  return tonumber(ARGV[3])
end
return 0
