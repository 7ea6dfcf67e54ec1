import { Queue } from 'bullmq';
import type { Config } from '../config/types.js';
import type { Keys } from './keys.js';
import type { RedisClient } from './redis-connection.js';

// Bounded so the BullMQ event stream costs a fixed amount of memory, not one entry per job forever.
const EVENTS_STREAM_MAXLEN = 1000;

export interface ShardQueue {
  targetId: string;
  shard: number;
  queue: Queue;
}

/** The BullMQ queues of every target: one per target, or one per target and shard on a cluster (keys.ts). */
export class TargetQueues {
  private readonly byTarget = new Map<string, Queue[]>();

  constructor(
    config: Config,
    private readonly keys: Keys,
    connection: RedisClient,
  ) {
    for (const target of config.targets) {
      const queues: Queue[] = [];
      for (let shard = 0; shard < keys.shards; shard++) {
        queues.push(
          new Queue(keys.queueName(target.id, shard), {
            // biome-ignore lint/suspicious/noExplicitAny: ioredis Cluster and Redis are both accepted at runtime
            connection: connection as any,
            prefix: keys.queuePrefix(target.id, shard),
            streams: { events: { maxLen: EVENTS_STREAM_MAXLEN } },
          }),
        );
      }
      this.byTarget.set(target.id, queues);
    }
  }

  get targetIds(): string[] {
    return [...this.byTarget.keys()];
  }

  /** The queue of a target in a shard (the event's shard: see Keys.shardOf). */
  get(targetId: string, shard = 0): Queue | undefined {
    return this.byTarget.get(targetId)?.[shard];
  }

  /** The queue that holds (or will hold) a target's delivery of an event: the event id names its shard. */
  forEvent(targetId: string, eventId: string): Queue | undefined {
    return this.get(targetId, this.keys.shardOfId(eventId));
  }

  /** Every shard's queue of a target. */
  ofTarget(targetId: string): Queue[] {
    return this.byTarget.get(targetId) ?? [];
  }

  all(): ShardQueue[] {
    return [...this.byTarget].flatMap(([targetId, queues]) =>
      queues.map((queue, shard) => ({ targetId, shard, queue })),
    );
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all().map((q) => q.queue.close()));
  }
}
