import type { TargetConfig } from '../config/types.js';
import { LuaScript } from '../queue/lua-script.js';
import type { RedisClient } from '../queue/redis-connection.js';

// A fixed window per target: src/lua/rate-limit-take.lua.
const TAKE = LuaScript.fromFile('rate-limit-take');

/**
 * A target's `rateLimit` across all its queues. BullMQ's limiter counts per queue, and on a cluster a target
 * has one queue per shard, so its limit would be multiplied by the number of shards; this window is shared
 * by every shard and every worker process. Without a cluster BullMQ's own limiter does the job.
 */
export class SharedRateLimit {
  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly limit: NonNullable<TargetConfig['rateLimit']>,
  ) {}

  /** 0 when a request may go now, else how many ms until the window allows one. */
  async acquire(): Promise<number> {
    return Number(await TAKE.run(this.redis, [this.key], [this.limit.max, this.limit.duration]));
  }
}
