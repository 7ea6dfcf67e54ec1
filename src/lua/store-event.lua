--[[
  Stores an event: dedupe check, the event hash, its index entry, its dedupe keys and every delivery job, in
  one atomic call. One call means one round trip per event, and "all of an event's jobs or none" holds
  without a second step: Redis runs a script to the end, and a script whose first write meets `maxmemory` is
  refused before it has written anything.

  The jobs are written the way BullMQ 5's `addStandardJob` writes a job with a custom id and no delay,
  priority, parent or deduplication (the only jobs the ingress makes): job hash, `added` and `waiting`
  events, the id on the wait (or paused) list, the worker marker. Calling BullMQ's own script would need a
  second call per target, since a script cannot call another. `test/integration/store-script.test.ts`
  compares what this writes with what `Queue.add` writes on the pinned BullMQ version, so an upgrade that
  changes the format fails the build instead of stranding jobs.

  Every key is passed in KEYS, so on Redis Cluster an event whose keys share a hash tag is one slot.

  Dedupe keys come in two kinds. A `request` key (the delivery id, the body's hash) held with the same tag
  makes the event a copy on its own. `change` keys (one per changed ref, or one for a merge or a body) make
  it a copy only when every one of them is held with the same tag: a push that moves one ref anew and
  repeats another's last move is stored, and the indices (1-based, among the change keys) of those that
  repeat are written to the event's `rep` field, so its readers know which refs repeat.

  A quarantined event (a signed body of unexpected shape, see docs/inbound.md) is written with its reason in
  the `q` field and indexed in its shard's quarantine index; it has no jobs.

  Input:
    KEYS[1]          event hash
    KEYS[2]          event index (ZSET)
    KEYS[3]          quarantine index (ZSET)
    KEYS[4..3+D]     dedupe keys
    then 8 per target (JOB_KEY_NAMES in store-script.ts, then the job hash):
                     wait, paused, meta, id, active, events, marker, job hash

    ARGV[1]  event id
    ARGV[2]  received at (ms)
    ARGV[3]  event retention (ms)
    ARGV[4]  meta JSON
    ARGV[5]  headers JSON
    ARGV[6]  body encoding
    ARGV[7]  body
    ARGV[8]  D, the number of dedupe keys
    ARGV[9]  quarantine reason ('' = none)
    then (tag, ttl seconds, kind 'request'|'change') per dedupe key,
    then (job id, name, data, opts) per target

  Output:
    {'duplicate', holder event id} for a copy;
    {'stored', repeated change indices joined by ','} otherwise ('' when none repeat)
]]
local rcall = redis.call
local nd = tonumber(ARGV[8])
local changes, repeated, firstHolder = 0, {}, nil
for i = 1, nd do
  local tag, kind = ARGV[7 + 3 * i], ARGV[9 + 3 * i]
  if kind == 'change' then changes = changes + 1 end
  local v = rcall('GET', KEYS[3 + i])
  if v then
    local bar = string.find(v, '|', 1, true)
    if bar and string.sub(v, 1, bar - 1) == tag then
      local rest = string.sub(v, bar + 1)
      local stop = string.find(rest, '|', 1, true)
      local holder = stop and string.sub(rest, 1, stop - 1) or rest
      if kind ~= 'change' then return {'duplicate', holder} end
      repeated[#repeated + 1] = changes
      firstHolder = firstHolder or holder
    end
  end
end
if changes > 0 and #repeated == changes then return {'duplicate', firstHolder} end
local rep = table.concat(repeated, ',')
rcall('HSET', KEYS[1], 'meta', ARGV[4], 'hdr', ARGV[5], 'enc', ARGV[6], 'body', ARGV[7], 'ok', ARGV[2])
if rep ~= '' then rcall('HSET', KEYS[1], 'rep', rep) end
if ARGV[9] ~= '' then
  rcall('HSET', KEYS[1], 'q', ARGV[9])
  rcall('ZADD', KEYS[3], ARGV[2], ARGV[1])
end
rcall('PEXPIRE', KEYS[1], ARGV[3])
rcall('ZADD', KEYS[2], ARGV[2], ARGV[1])
for i = 1, nd do
  rcall('SET', KEYS[3 + i], ARGV[7 + 3 * i] .. '|' .. ARGV[1], 'EX', ARGV[8 + 3 * i])
end
local k = 4 + nd
local a = 10 + 3 * nd
while k <= #KEYS do
  local wait, paused, meta, idKey, active, events, marker, jobKey =
    KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7]
  local jobId, name = ARGV[a], ARGV[a + 1]
  rcall('INCR', idKey)
  local maxEvents = rcall('HGET', meta, 'opts.maxLenEvents')
  if not maxEvents then
    maxEvents = 10000
    rcall('HSET', meta, 'opts.maxLenEvents', maxEvents)
  end
  if rcall('EXISTS', jobKey) == 0 then
    rcall('HMSET', jobKey, 'name', name, 'data', ARGV[a + 2], 'opts', ARGV[a + 3], 'timestamp', ARGV[2],
      'delay', 0, 'priority', 0)
    rcall('XADD', events, '*', 'event', 'added', 'jobId', jobId, 'name', name)
    local attrs = rcall('HMGET', meta, 'paused', 'concurrency')
    local list, held = wait, false
    if attrs[1] then
      list, held = paused, true
    elseif attrs[2] then
      held = rcall('LLEN', active) >= tonumber(attrs[2])
    end
    rcall('LPUSH', list, jobId)
    if not held then rcall('ZADD', marker, 0, '0') end
    rcall('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
  end
  k = k + 8
  a = a + 4
end
return {'stored', rep}
