import type { JobsOptions } from 'bullmq';
import type { Config, TargetConfig } from '../config/types.js';

/**
 * Options of every delivery job of a target. Retries are driven by the worker's backoff strategy (named
 * `hookrelay`), which reads the target's policy and any Retry-After; BullMQ's failed set is the dead-letter
 * store, kept for `retention.deadLetters`.
 */
export function deliveryJobOptions(config: Config, target: TargetConfig): JobsOptions {
  return {
    attempts: target.retry.attempts,
    backoff: { type: 'hookrelay' },
    removeOnComplete: { age: Math.ceil(config.retention.completedJobs / 1000) },
    removeOnFail: { age: Math.ceil(config.retention.deadLetters / 1000) },
  };
}
