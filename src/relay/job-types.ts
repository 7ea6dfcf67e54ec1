import type { BranchTransition } from './branch-transition.js';
/** What a delivery job carries. The event (bytes, headers, envelope) is stored once beside the jobs. */
export interface DeliveryJobData {
  eventId: string;
  targetId: string;
  /** Idempotency-Key sent to the target: stable across retries, crashes and replays (unless a fresh replay). */
  idempotencyKey: string;
  /** How the job came to be: straight from Bitbucket (absent), or an operator's replay/release. */
  trigger?: JobTrigger;
  /** The loop guard's inputs, worked out when the event was accepted; absent on a replay or release (unguarded). */
  loopGuard?: JobGuard;
}

export type JobTrigger = 'bitbucket' | 'replay' | 'release';

/**
 * What the loop guard needs of an event besides its id, taken from the envelope at the ingress so that a
 * worker reads the event and runs the guard in one Redis call instead of two (see loop-guard.ts).
 */
export interface JobGuard {
  /** Repository (`-` when the event has none). */
  repository: string;
  /** The changed refs' names. */
  refs: string[];
  /** Merge marks: a merge's destination and merge commit, or a push's updated branches and new heads. */
  mergeMarks: string[];
  /** A merged pull request (it waits for, and collapses into, its push). */
  merge?: true;
  /** The static rules' verdict when the event was accepted: suppressed without looking at Redis. */
  staticVerdict?: StaticSuppressReason;
  /** The source the event came through: the guard's counters are per source. */
  source: string;
  /** Digest of the pusher's identity (per-actor counters and the causal chain). */
  actor?: string;
  /** The pusher's name as the payload gives it, for the suppression's evidence. */
  actorName?: string;
  /** 12-character prefixes of the commits this push builds on (old heads, parents, a new tag's commit). */
  parents?: string[];
  /** The causal chain rule applies to this actor (`loop.chain.actors`). */
  chain?: true;
  /** When the event was received (ms): a parent delivered after it cannot have caused it. */
  receivedAt: number;
  /** A head commit whose message the payload lacks, to read through the source's REST API first. */
  lookup?: string;
  /** A single-branch push's move: the branch's order of pushes is checked in the same read (ref-order.ts). */
  branch?: BranchTransition;
}

export type StaticSuppressReason = 'skip-marker' | 'ignored-actor';

/** BullMQ job ids may not contain ':'; event ids are UUIDs and target ids are [A-Za-z0-9_-]. */
export function deliveryJobId(eventId: string, targetId: string): string {
  return `${eventId}.${targetId}`;
}

export function idempotencyKey(eventId: string, targetId: string): string {
  return `${eventId}.${targetId}`;
}
