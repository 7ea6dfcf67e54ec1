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

const BACKFILL_BATCH = 1000;

/**
 * Index the failed jobs the index does not know (dead letters from before it existed, or a process that died
 * between failing a job and indexing it): read straight from each queue's failed ZSET, whose scores are the
 * failure times, without loading a job. `NX`: an entry already there keeps its time. Returns how many were added.
 */
export async function backfillDeadLetterIndex(
  redis: RedisClient,
  keys: Keys,
  failedSets: string[],
): Promise<number> {
  let added = 0;
  for (const failed of failedSets) {
    for (let start = 0; ; start += BACKFILL_BATCH) {
      const raw = await redis.zrange(failed, start, start + BACKFILL_BATCH - 1, 'WITHSCORES');
      if (raw.length === 0) break;
      const args: (string | number)[] = [];
      for (let i = 0; i < raw.length; i += 2) args.push(Number(raw[i + 1]), raw[i]!);
      added += await redis.zadd(keys.deadLetters, 'NX', ...args);
      if (raw.length / 2 < BACKFILL_BATCH) break;
    }
  }
  return added;
}
