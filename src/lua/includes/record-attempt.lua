--[[
  `recordAttempt(key, field, head, attempt, tail, maxKept)`: records one delivery attempt and the state it
  leaves the (event, target) delivery in, atomic: read the previous state, keep its attempts (the last
  `maxKept`, counting the new one), write the new state, and only if the event hash still exists (a state
  write must not resurrect an expired event as a bare hash).

  The previous attempts are spliced in as the exact bytes JSON.stringify wrote rather than through cjson:
  cjson would reorder keys, encode an empty array as `{}` and escape `/`, and the stored JSON must stay
  byte-for-byte what the admin API has always read.

    key      the event hash
    field    the target's field (`t:<targetId>`)
    head     head of the new state's JSON (`{"state":…,"attempts":[`)
    attempt  the new attempt's JSON, or '' for none
    tail     tail of the new state's JSON (`],…,"updatedAt":…}`)
    maxKept  how many attempts to keep

  Returns 0 when there was no previous attempt (the caller's own object is then exact), else the JSON written
  (or that would have been, had the event not expired).
]]
local function recordAttempt(key, field, head, attempt, tail, maxKept)
  local prev = redis.call('HGET', key, field)
  local kept = {}
  if prev then
    local s = string.find(prev, '"attempts":[', 1, true)
    if s then
      local pos = s + 12
      local from = pos
      local depth = 0
      while true do
        local p = string.find(prev, '[\\"{}%[%],]', pos)
        if not p then kept = {} break end
        local c = string.sub(prev, p, p)
        if c == '"' then
          local q = p + 1
          while true do
            local r = string.find(prev, '[\\"]', q)
            if not r then q = nil break end
            if string.sub(prev, r, r) == '"' then q = r + 1 break end
            q = r + 2
          end
          if not q then kept = {} break end
          pos = q
        elseif c == '{' or c == '[' then
          depth = depth + 1
          pos = p + 1
        elseif c == '}' then
          depth = depth - 1
          pos = p + 1
        elseif c == ']' then
          if depth == 0 then
            if p > from then kept[#kept + 1] = string.sub(prev, from, p - 1) end
            break
          end
          depth = depth - 1
          pos = p + 1
        else
          if depth == 0 then
            kept[#kept + 1] = string.sub(prev, from, p - 1)
            from = p + 1
          end
          pos = p + 1
        end
      end
    end
  end
  local hadPrevious = #kept > 0
  if attempt ~= '' then kept[#kept + 1] = attempt end
  local max = tonumber(maxKept)
  local first = 1
  if #kept > max then first = #kept - max + 1 end
  local json = head .. table.concat(kept, ',', first, #kept) .. tail
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, field, json) end
  if hadPrevious then return json end
  return 0
end
