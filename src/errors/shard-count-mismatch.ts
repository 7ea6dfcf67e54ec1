/** `redis.shards` differs from the count the data in Redis was written with (see queue/shard-check.ts). */
export class ShardCountMismatch extends Error {}
