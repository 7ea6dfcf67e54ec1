import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

/**
 * The dead-letter index: one ZSET member per failed delivery job (its job id), scored by when it died. The lists
 * and bulk actions read it instead of every queue's failed set, whose jobs BullMQ would load one by one.
 * Written wherever a delivery is dead-lettered, removed on replay and purge, trimmed by housekeeping.
 */
export function indexDeadLetter(redis: RedisClient, keys: Keys, jobId: string, at = Date.now()) {
  return redis.zadd(keys.deadLetters, at, jobId);
}

export function unindexDeadLetter(redis: RedisClient, keys: Keys, jobId: string) {
  return redis.zrem(keys.deadLetters, jobId);
}
