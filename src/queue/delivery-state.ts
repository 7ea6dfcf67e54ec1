import { LuaScript } from './lua-script.js';
import type { RedisClient } from './redis-connection.js';

/**
 * The life of one (event, target) delivery, kept in the event's hash under `t:<targetId>` so that
 * `GET /api/events/:id` is a single HGETALL. Workers write it; the admin API and CLI read it.
 */
/*
 * `not-applicable`: final, neither delivered nor dead: the target does not take this event (see applicable.ts).
 * `quarantined`: an event held back for its shape (src/admin/quarantined.ts) until an operator releases it.
 */
export const DELIVERY_STATES = [
  'pending',
  'delivered',
  'retrying',
  'dead',
  'suppressed',
  'coalesced',
  'not-applicable',
  'quarantined',
] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface AttemptRecord {
  /** 1-based attempt number. */
  number: number;
  /** Epoch ms when the attempt started. */
  at: number;
  /** Duration in ms. */
  ms?: number;
  /** HTTP status, when the target answered. */
  status?: number;
  /** Short error (timeout, connection refused, …) when it did not; never a secret. */
  error?: string;
  trigger?: 'bitbucket' | 'replay' | 'release';
  /** The last request's headers as sent, credentials masked (see recorded-headers.ts). */
  requestHeaders?: Record<string, string>;
  /** The target's answer headers, masked the same way. */
  responseHeaders?: Record<string, string>;
}

export interface TargetState {
  state: DeliveryState;
  attempts: AttemptRecord[];
  /** Loop-guard reason for `suppressed`, classification for `dead` (e.g. `status 410`, `max age`), why `not-applicable`. */
  reason?: string;
  /** `coalesced`: the event id that superseded this one. */
  supersededBy?: string;
  /** A short excerpt of the last response body (max 512 chars), for dead letters. */
  excerpt?: string;
  /** Why the guard held it, or what ordering found (the rule and what it saw: actor, parent commit, counts). */
  evidence?: Evidence;
  updatedAt: number;
}

/** A rule's evidence: the rule's name and the facts it decided on (never a payload's body or a secret). */
export type Evidence = { rule: string } & Record<string, string | number>;

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

/** Splices the previous attempts into the new state: src/lua/record-attempt.lua. */
const RECORD_ATTEMPT = LuaScript.fromFile('record-attempt');

/** What recordAttempt changes, as a state update. */
export interface StateUpdate {
  state: DeliveryState;
  attempt?: AttemptRecord;
  reason?: string;
  excerpt?: string;
  supersededBy?: string;
  evidence?: Evidence;
}

/**
 * The state an update leaves the delivery in (without the earlier attempts, which the script keeps), and the
 * script's arguments (src/lua/includes/record-attempt.lua): the JSON of the new state around its attempts.
 */
export function attemptWrite(
  targetId: string,
  update: StateUpdate,
): { next: TargetState; args: [string, string, string, string, number] } {
  const next: TargetState = {
    state: update.state,
    attempts: update.attempt ? [update.attempt] : [],
    ...(update.reason ? { reason: update.reason } : {}),
    ...(update.excerpt ? { excerpt: update.excerpt.slice(0, 512) } : {}),
    ...(update.supersededBy ? { supersededBy: update.supersededBy } : {}),
    ...(update.evidence ? { evidence: update.evidence } : {}),
    updatedAt: Date.now(),
  };
  // JSON.stringify of `next` is head + attempts + tail; the script splices the previous attempts in between.
  const { state, attempts: _attempts, ...rest } = next;
  const head = `{"state":${JSON.stringify(state)},"attempts":[`;
  const tail = `]${JSON.stringify(rest).replace(/^\{/, ',')}`;
  return {
    next,
    args: [
      targetField(targetId),
      head,
      update.attempt ? JSON.stringify(update.attempt) : '',
      tail,
      MAX_ATTEMPTS_KEPT,
    ],
  };
}

/** The state the script answered (with the earlier attempts), or the update's own when there were none. */
export function writtenState(written: unknown, next: TargetState): TargetState {
  return typeof written === 'string' ? (JSON.parse(written) as TargetState) : next;
}

/** Record one attempt and the state it leaves the delivery in (attempt history bounded). One round trip. */
export async function recordAttempt(
  redis: RedisClient,
  eventKey: string,
  targetId: string,
  update: StateUpdate,
): Promise<TargetState> {
  const { next, args } = attemptWrite(targetId, update);
  return writtenState(await RECORD_ATTEMPT.run(redis, [eventKey], args), next);
}
