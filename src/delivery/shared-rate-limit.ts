import type { TargetConfig } from '../config/types.js';
import type { RedisClient } from '../queue/redis-connection.js';
import { luaScript } from './scripts.js';

// A fixed window per target: the first request of a window starts it, the max+1st learns how long is left.
const TAKE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return tonumber(ARGV[2]) end
  return left
end
return 0`;

/**
 * A target's `rateLimit` across all its queues. BullMQ's limiter counts per queue, and on a cluster a target
 * has one queue per shard, so its limit would be multiplied by the number of shards; this window is shared
 * by every shard and every worker process. Without a cluster BullMQ's own limiter does the job.
 */
export class SharedRateLimit {
  private readonly take: ReturnType<typeof luaScript>;

  constructor(
    redis: RedisClient,
    private readonly key: string,
    private readonly limit: NonNullable<TargetConfig['rateLimit']>,
  ) {
    this.take = luaScript(redis, 'hrRateTake', TAKE);
  }

  /** 0 when a request may go now, else how many ms until the window allows one. */
  async acquire(): Promise<number> {
    return Number(await this.take([this.key], [this.limit.max, this.limit.duration]));
  }
}
