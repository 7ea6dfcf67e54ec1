import type { Queue } from 'bullmq';
import type { Envelope } from '../bitbucket/envelope.js';
import { explain } from '../delivery/explain.js';
import {
  type AttemptRecord,
  type DeliveryState,
  type Evidence,
  type TargetState,
  targetField,
} from '../queue/delivery-state.js';
import { decodeMeta } from '../queue/event-meta.js';
import type { EventMeta, EventState } from '../queue/event-store.js';
import { deliveryJobId } from '../relay/job-types.js';
import type { AdminDeps } from './admin-deps.js';

export type { EventMeta } from '../queue/event-store.js';

/**
 * What the admin API shows about a received event. Built from the envelope only: never the body, never the
 * stored headers (they carry the signature), never anything from the config's secrets.
 */
export interface ReceivedView {
  id: string;
  source: string;
  platform: string;
  eventKey: string;
  deliveryId: string;
  hookId?: string;
  bitbucketAttempt?: number;
  repository: string | null;
  refs: Envelope['refs'];
  headCommit?: string;
  pullRequest?: Envelope['pullRequest'];
  actor?: string;
  receivedAt: string;
  clientIp?: string;
  /** `received` until the fan-out has routed it (repository, refs and targets are known from then on). */
  state: EventState;
  /** A `duplicate`'s original event. */
  duplicateOf?: string;
  /** On a cluster, the id its deliveries carry when it was routed in its repository's shard. */
  routedAs?: string;
}

export interface AttemptView extends Omit<AttemptRecord, 'at'> {
  at: string;
}

export interface TargetView {
  target: string;
  state: DeliveryState;
  reason?: string;
  supersededBy?: string;
  /** What the loop guard or ordering saw (rule, actor, parent commit, counts), and the same in a sentence. */
  evidence?: Evidence;
  explanation?: string;
  excerpt?: string;
  attempts: AttemptView[];
  updatedAt?: string;
  /** The BullMQ job behind the delivery (`unknown` once removed by retention). */
  job: { id: string; state: string };
}

/** The few envelope facts a list row shows about an event (suppressed deliveries, quarantined events). */
export type EventSummary = ReturnType<typeof eventSummary>;

export function eventSummary(meta: EventMeta) {
  return {
    source: meta.sourceId,
    eventKey: meta.envelope.eventKey,
    repository: meta.envelope.repository,
    refs: meta.envelope.refs.map((r) => r.name),
    receivedAt: new Date(meta.receivedAt).toISOString(),
  };
}

export function receivedView(id: string, meta: EventMeta, routing: Routing = {}): ReceivedView {
  const env = meta.envelope;
  return {
    id,
    source: meta.sourceId,
    platform: env.platform,
    eventKey: env.eventKey,
    deliveryId: env.deliveryId,
    ...(env.hookId ? { hookId: env.hookId } : {}),
    ...(env.attempt ? { bitbucketAttempt: env.attempt } : {}),
    repository: env.repository,
    refs: env.refs,
    ...(env.headCommit ? { headCommit: env.headCommit.hash } : {}),
    ...(env.pullRequest ? { pullRequest: env.pullRequest } : {}),
    ...(env.actor?.name || env.actor?.uuid ? { actor: env.actor.name ?? env.actor.uuid } : {}),
    receivedAt: new Date(meta.receivedAt).toISOString(),
    ...(meta.clientIp ? { clientIp: meta.clientIp } : {}),
    state: routing.state ?? 'received',
    ...(routing.duplicateOf ? { duplicateOf: routing.duplicateOf } : {}),
    ...(routing.routedAs ? { routedAs: routing.routedAs } : {}),
  };
}

/** Where the fan-out is with an event, read with its meta: every field absent when the event is gone. */
export interface Routing {
  state?: EventState;
  duplicateOf?: string;
  /** The routed record's id, when it differs from the id the ingress answered with (a cluster). */
  routedAs?: string;
  /** When the fan-out decided (ms). */
  routedAt?: number;
  /** Read under its routed id: the id the ingress answered with (the event is listed under that one). */
  receivedAs?: string;
}

export function attemptViews(state: TargetState | null): AttemptView[] {
  return (state?.attempts ?? []).map((a) => ({ ...a, at: new Date(a.at).toISOString() }));
}

export function parseState(raw: string | null | undefined): TargetState | null {
  if (!raw) return null;
  try {
    return JSON.parse(raw) as TargetState;
  } catch {
    return null;
  }
}

/**
 * Meta and the given targets' states of one event, in one HMGET (the body is never read), why it is
 * quarantined while it is (the `q` field, cleared on release or discard), and where the fan-out is with it.
 * On a cluster an id the ingress answered with may point at the routed record (`routedAs`): that is read.
 */
export async function readEventParts(
  deps: AdminDeps,
  id: string,
  targets?: string[],
): Promise<{
  meta: EventMeta | null;
  states: Map<string, TargetState | null>;
  quarantine?: string;
  routing: Routing;
}> {
  const key = deps.keys.event(id);
  if (!targets) {
    const meta = decodeMeta(await deps.redis.hgetBuffer(key, 'meta'));
    if (meta) return readEventParts(deps, id, meta.targets);
    // Moved to its repository's shard by the fan-out (a cluster): read there.
    const routedAs = deps.keys.shards > 1 ? await deps.redis.get(deps.keys.routedAs(id)) : null;
    if (!routedAs || routedAs === id) return { meta: null, states: new Map(), routing: {} };
    const routed = await readEventParts(deps, routedAs);
    return { ...routed, routing: { ...routed.routing, routedAs } };
  }
  const [rawMeta, ...fields] = await deps.redis.hmgetBuffer(
    key,
    'meta',
    'ok',
    'q',
    'state',
    'duplicateOf',
    'receivedAs',
    ...targets.map(targetField),
  );
  // The meta may be compressed (event-meta.ts); every other field is text.
  const values = [null, ...fields.map((value) => value?.toString('utf8') ?? null)];
  const states = new Map<string, TargetState | null>();
  for (const [i, t] of targets.entries()) states.set(t, parseState(values[i + 6]));
  const meta = decodeMeta(rawMeta);
  const routing: Routing = {
    ...(values[3] ? { state: values[3] as EventState } : {}),
    ...(values[4] ? { duplicateOf: values[4] } : {}),
    ...(values[5] ? { receivedAs: values[5] } : {}),
  };
  return { meta, states, ...(meta && values[2] ? { quarantine: values[2] } : {}), routing };
}

/** A job's state in delivery terms, for deliveries whose worker has not written a state yet. */
function stateFromJob(jobState: string): DeliveryState {
  if (jobState === 'completed') return 'delivered';
  if (jobState === 'failed') return 'dead';
  return 'pending';
}

export async function targetView(
  queue: Queue | undefined,
  eventId: string,
  target: string,
  state: TargetState | null,
): Promise<TargetView> {
  const jobId = deliveryJobId(eventId, target);
  const jobState = queue ? await queue.getJobState(jobId) : 'unknown';
  return {
    target,
    state: state?.state ?? stateFromJob(jobState),
    ...(state?.reason ? { reason: state.reason } : {}),
    ...(state?.supersededBy ? { supersededBy: state.supersededBy } : {}),
    ...(state?.evidence ? { evidence: state.evidence, explanation: explain(state.evidence) } : {}),
    ...(state?.excerpt ? { excerpt: state.excerpt } : {}),
    attempts: attemptViews(state),
    ...(state?.updatedAt ? { updatedAt: new Date(state.updatedAt).toISOString() } : {}),
    job: { id: jobId, state: jobState },
  };
}
