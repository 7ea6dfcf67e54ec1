--[[
  `guard(first)`: the loop guard's Redis rules for one delivery.

  A push checks the chain first, then its rate (a held push is not counted: the rate closes as entries age
  out; members are event ids, so a crashed worker's second look is not counted twice), and records its
  merge marks whatever its verdict — `<verdict> <event id>` — so that the merged PR inherits it instead of
  waiting.

  Input:
    KEYS[first …]  the per-actor ref-rate ZSETs (ARGV[5] of them), then the merge marks (ARGV[8] of them),
                   then the delivered-commit records of the commits the push builds on

    ARGV[1]   now (ms)
    ARGV[2]   rate window (ms)
    ARGV[3]   rate count
    ARGV[4]   event id
    ARGV[5]   how many rate keys
    ARGV[6]   merge mark ttl (s)
    ARGV[7]   'push' or 'merge'
    ARGV[8]   how many merge mark keys
    ARGV[9]   the static rules' verdict ('' = none)
    ARGV[10]  actor digest ('' = chain rule off)
    ARGV[11]  max turns
    ARGV[12]  received at (ms)

  Output {code, a, b}:
    0  pass
    1  ref-rate (a = ref index, b = count)
    2  merge-push-collapsed (a = the push's event id)
    3  a merge whose push is not seen yet
    4  chain-loop (a = parent index, b = turns)
    5  a merge whose push was held (a = its event id, b = its reason)
    6  the static verdict stands
]]
--- @include "includes/chain-turn"
local function guard(first)
  local nRate = tonumber(ARGV[5])
  local lastRate = first + nRate - 1
  local lastMerge = lastRate + tonumber(ARGV[8])
  local id = ARGV[4]
  if ARGV[7] == 'merge' then
    local waiting = false
    for i = lastRate + 1, lastMerge do
      local mark = redis.call('GET', KEYS[i])
      if mark then
        local verdict, pushId = string.match(mark, '^(%S+) (%S+)$')
        if not verdict then return {2, mark} end
        if verdict == 'pass' then return {2, pushId} end
        return {5, pushId, verdict}
      end
      waiting = true
    end
    if waiting then return {3} end
    return {0}
  end
  local code, a, b = 0, 0, 0
  local verdict = ARGV[9]
  if verdict ~= '' then code = 6 end
  if code == 0 and ARGV[10] ~= '' then
    local best, at = turn(lastMerge + 1, #KEYS, ARGV[10], tonumber(ARGV[12]))
    if best >= tonumber(ARGV[11]) then code, a, b, verdict = 4, at, best, 'chain-loop' end
  end
  if code == 0 then
    local now = tonumber(ARGV[1])
    local window = tonumber(ARGV[2])
    local count = tonumber(ARGV[3])
    for i = first, lastRate do
      local k = KEYS[i]
      redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
      if not redis.call('ZSCORE', k, id) then
        if redis.call('ZCARD', k) >= count then
          code, a, b, verdict = 1, i - first + 1, count, 'ref-rate'
          break
        end
        redis.call('ZADD', k, now, id)
        redis.call('PEXPIRE', k, window)
      end
    end
  end
  if verdict == '' then verdict = 'pass' end
  for i = lastRate + 1, lastMerge do
    redis.call('SET', KEYS[i], verdict .. ' ' .. id, 'EX', ARGV[6], 'NX')
  end
  return {code, a, b}
end
