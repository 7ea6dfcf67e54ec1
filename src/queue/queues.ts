import { Queue } from 'bullmq';
import type { Config } from '../config/types.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

// Bounded so the BullMQ event stream costs a fixed amount of memory, not one entry per job forever.
const EVENTS_STREAM_MAXLEN = 1000;

/** One BullMQ queue per target, all on one shared connection (so one MULTI can add jobs to several). */
export function createTargetQueues(config: Config, keys: Keys, connection: RedisClient): Map<string, Queue> {
  const queues = new Map<string, Queue>();
  for (const target of config.targets) {
    queues.set(
      target.id,
      new Queue(keys.queueName(target.id), {
        // biome-ignore lint/suspicious/noExplicitAny: ioredis Cluster and Redis are both accepted at runtime
        connection: connection as any,
        prefix: keys.queuePrefix(target.id),
        streams: { events: { maxLen: EVENTS_STREAM_MAXLEN } },
      }),
    );
  }
  return queues;
}
