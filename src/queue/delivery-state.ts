import type { RedisClient } from './redis-connection.js';

/**
 * The life of one (event, target) delivery, kept in the event's hash under `t:<targetId>` so that
 * `GET /api/events/:id` is a single HGETALL. Workers write it; the admin API and CLI read it.
 */
export type DeliveryState = 'pending' | 'delivered' | 'retrying' | 'dead' | 'suppressed' | 'coalesced';

export interface AttemptRecord {
  /** 1-based attempt number. */
  n: number;
  /** Epoch ms when the attempt started. */
  at: number;
  /** Duration in ms. */
  ms?: number;
  /** HTTP status, when the target answered. */
  status?: number;
  /** Short error (timeout, connection refused, …) when it did not; never a secret. */
  error?: string;
  trigger?: 'bitbucket' | 'replay' | 'release';
}

export interface TargetState {
  state: DeliveryState;
  attempts: AttemptRecord[];
  /** Loop-guard reason for `suppressed`, classification for `dead` (e.g. `status 410`, `max age`). */
  reason?: string;
  /** `coalesced`: the event id that superseded this one. */
  supersededBy?: string;
  /** A short excerpt of the last response body (max 512 chars), for dead letters. */
  excerpt?: string;
  updatedAt: number;
}

export const TARGET_FIELD_PREFIX = 't:';
const MAX_ATTEMPTS_KEPT = 50;

export function targetField(targetId: string): string {
  return `${TARGET_FIELD_PREFIX}${targetId}`;
}

export async function readTargetState(
  redis: RedisClient,
  eventKey: string,
  targetId: string,
): Promise<TargetState | null> {
  const raw = await redis.hget(eventKey, targetField(targetId));
  return raw ? (JSON.parse(raw) as TargetState) : null;
}

/** Record one attempt and the state it leaves the delivery in (attempt history bounded). */
export async function recordAttempt(
  redis: RedisClient,
  eventKey: string,
  targetId: string,
  update: {
    state: DeliveryState;
    attempt?: AttemptRecord;
    reason?: string;
    excerpt?: string;
    supersededBy?: string;
  },
): Promise<TargetState> {
  const previous = await readTargetState(redis, eventKey, targetId);
  const attempts = [...(previous?.attempts ?? []), ...(update.attempt ? [update.attempt] : [])].slice(
    -MAX_ATTEMPTS_KEPT,
  );
  const next: TargetState = {
    state: update.state,
    attempts,
    ...(update.reason ? { reason: update.reason } : {}),
    ...(update.excerpt ? { excerpt: update.excerpt.slice(0, 512) } : {}),
    ...(update.supersededBy ? { supersededBy: update.supersededBy } : {}),
    updatedAt: Date.now(),
  };
  // Only if the event still exists: a state write must not resurrect an expired event as a bare hash.
  await redis.eval(
    "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 1",
    1,
    eventKey,
    targetField(targetId),
    JSON.stringify(next),
  );
  return next;
}
