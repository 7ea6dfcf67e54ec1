import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { indexDeadLetter } from '../queue/dead-letter-index.js';
import { type AttemptRecord, readTargetState, recordAttempt } from '../queue/delivery-state.js';
import type { Keys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis-connection.js';

/** A delivery that will not be tried again by itself; BullMQ's failed set keeps its job for a replay. */
export interface DeadLetter {
  eventId: string;
  targetId: string;
  jobId: string;
  reason: string;
  /** The last attempt, when one was made. */
  attempt?: AttemptRecord;
  /** The start of the target's answer, secrets blanked. */
  excerpt?: string;
}

/**
 * The one place dead letters are written: the delivery's state on the event (what the admin API and console show)
 * and the dead-letter index (what their lists read). A write that fails is logged and counted, then rethrown.
 */
export class DeadLetterWriter {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * `keepEarlier`: a dead state already on the event stays (a failure BullMQ reports after the processor wrote
   * its own dead letter, e.g. too many stalls, must not replace the reason).
   */
  async write(letter: DeadLetter, opts: { keepEarlier?: boolean } = {}): Promise<void> {
    const eventKey = this.keys.event(letter.eventId);
    const state = async () => {
      if (
        opts.keepEarlier &&
        (await readTargetState(this.redis, eventKey, letter.targetId))?.state === 'dead'
      )
        return;
      await recordAttempt(this.redis, eventKey, letter.targetId, {
        state: 'dead',
        reason: letter.reason,
        ...(letter.attempt ? { attempt: letter.attempt } : {}),
        ...(letter.excerpt ? { excerpt: letter.excerpt } : {}),
      });
    };
    try {
      // Independent writes, sent together.
      await Promise.all([state(), indexDeadLetter(this.redis, this.keys, letter.jobId)]);
    } catch (err) {
      this.metrics.deadLetterWriteFailures.inc({ target: letter.targetId });
      this.log.error(
        {
          target: letter.targetId,
          eventId: letter.eventId,
          reason: letter.reason,
          err: (err as Error).message,
        },
        'dead letter not recorded',
      );
      throw err;
    }
  }
}
