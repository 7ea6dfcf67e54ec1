--[[
  The fan-out's decision on one received event, in one atomic call (src/fanout/): content dedupe, then the
  routed event (envelope, targets, repeated refs or quarantine reason), its content dedupe keys and one
  delivery job per target, and the inbox entry acknowledged and deleted. Idempotent by event id: an event
  already decided (a re-run after a crash between read and acknowledge, or another consumer's claim) is only
  acknowledged, so no job is written twice.

  Content dedupe keys (one per changed ref, or one for a merge or a body; value `<tag>|<event id>`) make the
  event a copy only when every one of them is held with the same tag: a push that moves one ref anew and
  repeats another's last move is routed, and the indices (1-based) of the repeating keys are written to `rep`.
  A copy is recorded `duplicate` with the event it repeats in `duplicateOf`, and gets no jobs.

  KEYS[1] is the received event's own hash, or (on a cluster, when the repository's shard is not the inbox's)
  a new hash under the routed id in the repository's shard: then ARGV[12] is '1', the body and headers come
  along, the record names the received id (`receivedAs`), nothing is acknowledged here and a duplicate
  writes nothing (the caller then moves or marks the received event in its own shard: mark-routed.lua).

  KEYS: 1 routed event hash, 2 event index, 3 quarantine index, 4 inbox stream, 5..4+D content dedupe keys,
        then 8 per target (see includes/add-delivery-jobs.lua).
  ARGV: 1 routed event id, 2 routed at (ms), 3 received at (ms), 4 event retention (ms), 5 meta JSON,
        6 meta JSON of a duplicate (no targets), 7 state ('routed' | 'quarantined'), 8 quarantine reason
        ('' = none), 9 D, 10 inbox entry id ('' = none to acknowledge here), 11 consumer group, 12 copy
        ('' | '1'), 13 headers JSON, 14 body encoding, 15 body, 16 the received event's id (13–16 only with
        a copy), then (tag, TTL seconds) per content key, then (job id, name, data, opts) per target.
  Returns {'decided', state, duplicate of} when decided before, {'gone', ''} when the received event has
  expired, {'duplicate', holder event id}, or {'routed', repeated indices joined by ','}.
]]
--- @include "includes/add-delivery-jobs"
local rcall = redis.call
local copy = ARGV[12] == '1'
local function acknowledge()
  if ARGV[10] ~= '' then
    rcall('XACK', KEYS[4], ARGV[11], ARGV[10])
    rcall('XDEL', KEYS[4], ARGV[10])
  end
end

local state = rcall('HGET', KEYS[1], 'state')
if state and state ~= 'received' then
  acknowledge()
  return {'decided', state, rcall('HGET', KEYS[1], 'duplicateOf') or ''}
end
if not copy and rcall('EXISTS', KEYS[1]) == 0 then
  acknowledge()
  return {'gone', ''}
end

local nd = tonumber(ARGV[9])
local repeated, firstHolder = {}, nil
for i = 1, nd do
  local tag = ARGV[15 + 2 * i]
  local held = rcall('GET', KEYS[4 + i])
  if held then
    local bar = string.find(held, '|', 1, true)
    if bar and string.sub(held, 1, bar - 1) == tag then
      repeated[#repeated + 1] = i
      firstHolder = firstHolder or string.sub(held, bar + 1)
    end
  end
end
if nd > 0 and #repeated == nd then
  if not copy then
    rcall('HSET', KEYS[1], 'meta', ARGV[6], 'state', 'duplicate', 'duplicateOf', firstHolder, 'routedAt', ARGV[2])
    acknowledge()
  end
  return {'duplicate', firstHolder}
end

local rep = table.concat(repeated, ',')
rcall('HSET', KEYS[1], 'meta', ARGV[5], 'state', ARGV[7], 'routedAt', ARGV[2])
if copy then
  rcall('HSET', KEYS[1], 'hdr', ARGV[13], 'enc', ARGV[14], 'body', ARGV[15], 'ok', ARGV[3], 'receivedAs', ARGV[16])
  rcall('PEXPIRE', KEYS[1], ARGV[4])
  rcall('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
if rep ~= '' then rcall('HSET', KEYS[1], 'rep', rep) end
if ARGV[8] ~= '' then
  rcall('HSET', KEYS[1], 'q', ARGV[8])
  rcall('ZADD', KEYS[3], ARGV[3], ARGV[1])
end
for i = 1, nd do
  rcall('SET', KEYS[4 + i], ARGV[15 + 2 * i] .. '|' .. ARGV[1], 'EX', ARGV[16 + 2 * i])
end
addDeliveryJobs(5 + nd, 17 + 2 * nd, ARGV[2])
acknowledge()
return {'routed', rep}
