import { ShardCountMismatch } from '../errors/index.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

/**
 * The shard count is part of every event id and key on a cluster: a relay started with another count would
 * look for events, queues and dedupe keys in the wrong shards and leave the rest without workers. The first
 * process records the count; every later one must agree or refuse to start.
 */
export async function checkShardCount(redis: RedisClient, keys: Keys): Promise<void> {
  if (keys.shards === 1) return;
  await redis.set(keys.shardCount, String(keys.shards), 'NX');
  const recorded = Number(await redis.get(keys.shardCount));
  if (recorded !== keys.shards) {
    throw new ShardCountMismatch(
      `redis.shards is ${keys.shards} but the data in this cluster was written with ${recorded} shards; ` +
        `set redis.shards: ${recorded} (changing it needs a drained relay and ${keys.shardCount} removed)`,
    );
  }
}
