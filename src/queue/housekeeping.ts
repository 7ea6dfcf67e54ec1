import type { Logger } from '../log.js';
import type { Runtime } from '../runtime.js';
import { backfillDeadLetterIndex } from './dead-letter-index.js';

const EVERY_MS = 60_000;

/**
 * Trim the indexes whose members outlive what they point at: event hashes expire on their own, but their
 * entries in the event, quarantine, suppressed and dead-letter indexes would stay forever (and with `noeviction` a full Redis
 * answers every webhook 503). Run by every worker process; each run is one idempotent ZREMRANGEBYSCORE per index.
 */
export function startHousekeeping(
  runtime: Pick<Runtime, 'redis' | 'keys' | 'config'> & Partial<Pick<Runtime, 'queues'>>,
  log: Logger,
): { stop(): void } {
  // Once per start: failed jobs the dead-letter index does not know yet (see backfillDeadLetterIndex).
  if (runtime.queues) {
    const failedSets = runtime.queues.all().map(({ queue }) => queue.keys.failed!);
    backfillDeadLetterIndex(runtime.redis, runtime.keys, failedSets).then(
      (added) => {
        if (added > 0) log.info({ added }, 'indexed dead letters the index did not know');
      },
      (err: Error) =>
        log.warn({ err: err.message }, 'dead-letter index backfill failed; lists may miss some'),
    );
  }
  const run = async () => {
    const horizon = Date.now() - (runtime.config.retention.events + runtime.config.retention.deadLetters);
    try {
      const [suppressed, deadLetters, ...perShard] = await Promise.all([
        runtime.redis.zremrangebyscore(runtime.keys.suppressed, '-inf', horizon),
        runtime.redis.zremrangebyscore(runtime.keys.deadLetters, '-inf', horizon),
        ...Array.from({ length: runtime.keys.shards }, (_, s) =>
          runtime.redis.zremrangebyscore(runtime.keys.eventIndexOf(s), '-inf', horizon),
        ),
        ...Array.from({ length: runtime.keys.shards }, (_, s) =>
          runtime.redis.zremrangebyscore(runtime.keys.quarantinedOf(s), '-inf', horizon),
        ),
      ]);
      const events = perShard.reduce((a, b) => a + b, 0);
      if (events + suppressed + deadLetters > 0)
        log.debug({ events, suppressed, deadLetters }, 'trimmed expired index entries');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'housekeeping failed; will try again');
    }
  };
  void run();
  const timer = setInterval(run, EVERY_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
