--[[
  Delivery jobs written the way BullMQ 5's `addStandardJob` writes a job with a custom id and no delay,
  priority, parent or deduplication (the only jobs the relay makes): job hash, `added` and `waiting` events,
  the id on the wait (or paused) list, the worker marker. Calling BullMQ's own script would need a call per
  target, since a script cannot call another. test/integration/store-script.test.ts compares what this writes
  with what `Queue.add` writes on the pinned BullMQ version, so an upgrade that changes the format fails the
  build instead of stranding jobs. A job id that exists already is left alone (BullMQ's rule too).

  From KEYS[k]: 8 keys per target (wait, paused, meta, id, active, events, marker, job hash); from ARGV[a]:
  4 arguments per target (job id, name, data, opts). `timestamp`: the jobs' creation time (ms).
]]
local function addDeliveryJobs(k, a, timestamp)
  while k <= #KEYS do
    local wait, paused, meta, idKey, active, events, marker, jobKey =
      KEYS[k], KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5], KEYS[k + 6], KEYS[k + 7]
    local jobId, name = ARGV[a], ARGV[a + 1]
    redis.call('INCR', idKey)
    local maxEvents = redis.call('HGET', meta, 'opts.maxLenEvents')
    if not maxEvents then
      maxEvents = 10000
      redis.call('HSET', meta, 'opts.maxLenEvents', maxEvents)
    end
    if redis.call('EXISTS', jobKey) == 0 then
      redis.call('HMSET', jobKey, 'name', name, 'data', ARGV[a + 2], 'opts', ARGV[a + 3], 'timestamp', timestamp,
        'delay', 0, 'priority', 0)
      redis.call('XADD', events, '*', 'event', 'added', 'jobId', jobId, 'name', name)
      local attrs = redis.call('HMGET', meta, 'paused', 'concurrency')
      local list, held = wait, false
      if attrs[1] then
        list, held = paused, true
      elseif attrs[2] then
        held = redis.call('LLEN', active) >= tonumber(attrs[2])
      end
      redis.call('LPUSH', list, jobId)
      if not held then redis.call('ZADD', marker, 0, '0') end
      redis.call('XADD', events, 'MAXLEN', '~', maxEvents, '*', 'event', 'waiting', 'jobId', jobId)
    end
    k = k + 8
    a = a + 4
  end
end
