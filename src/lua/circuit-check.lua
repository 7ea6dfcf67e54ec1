--[[
  Whether a delivery may go to a target, by the target's shared circuit breaker (circuit-breaker.ts): the
  hash holds `fails` (consecutive retryable failures), `openUntil` (ms epoch; 0 or absent = closed) and
  `probeUntil` (while one probe is out after the cooldown). After the cooldown the first caller becomes the
  probe; the others wait for its answer.

  Input:
    KEYS[1]  the target's circuit hash

    ARGV[1]  now (ms)
    ARGV[2]  how long a probe may be out (ms)

  Output {state, wait ms, fails}, state:
    0  closed
    1  open (wait ms = until the cooldown ends)
    2  half-open, another delivery is probing (wait ms = until its probe expires)
    3  half-open, this delivery is the probe
]]
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
local fails = tonumber(redis.call('HGET', KEYS[1], 'fails') or '0')
if openUntil == 0 then return {0, 0, fails} end
local now = tonumber(ARGV[1])
if now < openUntil then return {1, openUntil - now, fails} end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0')
if probe > now then return {2, probe - now, fails} end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[2]))
return {3, 0, fails}
