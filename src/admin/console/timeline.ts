import type { Envelope } from '../../bitbucket/envelope.js';
import type { Config, RouteConfig } from '../../config/types.js';
import { explain } from '../../delivery/explain.js';
import type { AttemptRecord, TargetState } from '../../queue/delivery-state.js';
import { deliveryJobId } from '../../relay/job-types.js';
import { Router } from '../../relay/routing.js';
import type { AdminDeps } from '../admin-deps.js';
import { type EventMeta, type Routing, readEventParts } from '../event-view.js';

/**
 * The life of one event in the order it happened, for the console's event page and `hookrelay events show`
 * (both render this one structure). Read from the event hash, the delivery jobs and the circuit breakers;
 * header values that could carry a secret are masked, the body is never part of it.
 */
export interface Timeline {
  id: string;
  found: boolean;
  entries: TimelineEntry[];
}

export interface TimelineEntry {
  /** ISO time, when the step has one. */
  at?: string;
  kind: 'received' | 'dedupe' | 'routing' | 'loop-guard' | 'coalescing' | 'attempt' | 'outcome';
  target?: string;
  title: string;
  /** Label → value, in display order. */
  details: [string, string][];
  /** Tone for the console: good (delivered), bad (dead), warn (retrying, suppressed), info. */
  tone: 'good' | 'bad' | 'warn' | 'info';
}

const SECRET_HEADER = /signature|authorization|token|secret|cookie|api-?key|password/i;
export const MASK = '•••• (masked)';

export function maskHeaders(headers: Record<string, string>): [string, string][] {
  return Object.entries(headers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => [name, SECRET_HEADER.test(name) ? MASK : value]);
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** Why each of the source's routes did or did not match (against the config running now). */
export function explainRouting(config: Pick<Config, 'routes'>, sourceId: string, env: Envelope): string[] {
  const routes = config.routes.filter((r) => r.source === sourceId);
  if (routes.length === 0) return [`source ${sourceId} has no routes`];
  return routes.map((route) => {
    const test = (r: RouteConfig) => new Router({ routes: [r] }).match(sourceId, env).routes.length > 0;
    if (test(route)) return `route ${route.id}: matched → ${route.targets.join(', ')}`;
    const open: RouteConfig = { ...route, events: ['*', '**'], repos: ['**'] };
    delete open.branches;
    const why: string[] = [];
    if (!test({ ...open, events: route.events }))
      why.push(`event key ${env.eventKey} is not one of ${route.events.join(', ')}`);
    if (!test({ ...open, repos: route.repos }))
      why.push(`repository ${env.repository ?? '(none)'} is not one of ${route.repos.join(', ')}`);
    if (route.branches && !test({ ...open, branches: route.branches }))
      why.push(`no changed branch matches ${route.branches.join(', ')}`);
    return `route ${route.id}: not matched (${why.join('; ') || 'conditions differ'})`;
  });
}

/** The fan-out's decision as a timeline entry: routed to …, quarantined because …, duplicate of …, or not yet. */
function routingEntry(
  deps: AdminDeps,
  meta: EventMeta,
  quarantine: string | undefined,
  routing: Routing,
): TimelineEntry {
  const at = iso(routing.routedAt ?? meta.receivedAt);
  if (routing.state === 'received')
    return {
      at: iso(meta.receivedAt),
      kind: 'routing',
      title: 'Received: waiting for the fan-out to route it',
      details: [
        ['state', 'received (acknowledged to Bitbucket, stored; repository, refs and targets not read yet)'],
        ['next', 'a worker process parses, validates and routes it, then delivers it'],
      ],
      tone: 'info',
    };
  if (routing.state === 'duplicate')
    return {
      at,
      kind: 'routing',
      title: `Duplicate of ${routing.duplicateOf ?? 'a stored event'}: not delivered`,
      details: [
        ['duplicate of', routing.duplicateOf ?? '-'],
        ['why', 'every change it carries repeats that event (a second hook sent the same push or merge)'],
      ],
      tone: 'info',
    };
  if (quarantine !== undefined)
    return {
      at,
      kind: 'routing',
      title: 'Quarantined: stored, not routed, for its shape',
      details: [
        ['reason', quarantine],
        ['next', 'an operator releases it (routed and delivered as if it had just arrived) or discards it'],
      ],
      tone: 'warn',
    };
  const routes = explainRouting(deps.config, meta.sourceId, meta.envelope);
  const repeated = meta.envelope.repeatedRefs ?? [];
  return {
    at,
    kind: 'routing',
    title: meta.targets.length ? `Routed to ${meta.targets.join(', ')}` : 'No route matched',
    details: [
      ['targets', meta.targets.join(', ') || 'none: nothing is delivered'],
      ...(routing.routedAs ? [['routed as', routing.routedAs] as [string, string]] : []),
      ...(repeated.length ? [['repeated refs', repeated.join(', ')] as [string, string]] : []),
      ...routes.map((r): [string, string] => ['route', r]),
    ],
    tone: meta.targets.length ? 'info' : 'warn',
  };
}

function receivedEntries(
  deps: AdminDeps,
  meta: EventMeta,
  headers: Record<string, string>,
  size: number,
  quarantine: string | undefined,
  routing: Routing,
): TimelineEntry[] {
  const env = meta.envelope;
  const details: [string, string][] = [
    ['source', `${meta.sourceId} (${env.platform})`],
    ['event key', env.eventKey],
    ['delivery id', env.deliveryId],
    ['repository', env.repository ?? '-'],
    [
      'refs',
      env.refs
        .map(
          (r) =>
            `${r.kind} ${r.name} ${r.oldHash?.slice(0, 12) ?? 'new'}..${r.newHash?.slice(0, 12) ?? 'deleted'}`,
        )
        .join(', ') || '-',
    ],
    // The hash only: the commit message is payload, shown as loop-guard evidence when it is the reason.
    ['head commit', env.headCommit ? env.headCommit.hash.slice(0, 12) : '-'],
    ['actor', env.actor?.name ?? env.actor?.uuid ?? '-'],
    ['size', `${size} bytes`],
    ['client IP', meta.clientIp ?? '-'],
    ["Bitbucket's attempt", env.attempt ? String(env.attempt) : '1 (no retry header)'],
    ...maskHeaders(headers).map(([n, v]): [string, string] => [`header ${n}`, v]),
  ];
  if (env.pullRequest)
    details.splice(5, 0, [
      'pull request',
      `#${env.pullRequest.id} ${env.pullRequest.title ?? ''} (${env.pullRequest.sourceBranch ?? '?'} → ${env.pullRequest.destinationBranch ?? '?'})`,
    ]);
  return [
    { at: iso(meta.receivedAt), kind: 'received', title: 'Received from Bitbucket', details, tone: 'info' },
    {
      at: iso(meta.receivedAt),
      kind: 'dedupe',
      title: 'Dedupe: new request, stored',
      details: [
        ['delivery id', `${env.deliveryId} not seen before`],
        [
          'copies',
          'a redelivery or a replayed body is answered 200 with this id; a second hook with the same change is recorded as its duplicate',
        ],
      ],
      tone: 'info',
    },
    routingEntry(deps, meta, quarantine, routing),
  ];
}

function firstLine(message: string | undefined): string {
  return (message ?? '').split('\n')[0]!.slice(0, 200);
}

function loopGuardEntry(config: Config, target: string, state: TargetState, env: Envelope): TimelineEntry {
  const { maxTriggersPerRef, skipMarkers, ignoreActors } = config.loop;
  const evidence: [string, string][] = [['reason', state.reason ?? '-']];
  if (state.reason === 'skip-marker') {
    const message = env.headCommit?.message ?? '';
    const marker = skipMarkers.find((m) => message.toLowerCase().includes(m.toLowerCase()));
    evidence.push(['commit message', firstLine(message)], ['marker', marker ?? skipMarkers.join(', ')]);
  } else if (state.reason === 'ignored-actor') {
    evidence.push(
      ['actor', env.actor?.name ?? env.actor?.uuid ?? '-'],
      [
        'commit authors',
        [...new Set(env.commits.map((c) => c.author?.name ?? c.author?.email ?? '?'))].join(', ') || '-',
      ],
      ['ignored actors', ignoreActors.join(', ')],
    );
  } else if (state.reason === 'ref-rate') {
    evidence.push(
      ['refs', env.refs.map((r) => r.name).join(', ')],
      ['limit', `${maxTriggersPerRef.count} triggers per ref in ${maxTriggersPerRef.window / 1000} s`],
    );
  } else {
    evidence.push(['commit message', firstLine(env.headCommit?.message)]);
  }
  // The rule's own account (chain turns, merge marks, the actor's rate): what the guard saw when it decided.
  if (state.evidence) evidence.push(['why', explain(state.evidence)]);
  return {
    at: iso(state.updatedAt),
    kind: 'loop-guard',
    target,
    title: `Loop guard suppressed the delivery to ${target}: ${state.reason ?? 'suppressed'}`,
    details: evidence,
    tone: 'warn',
  };
}

export interface TargetRuntimeInfo {
  jobState: string;
  maxAttempts?: number;
  nextRetryAt?: number;
  circuitOpenUntil?: number;
}

/** An attempt's recorded headers (credentials already masked when recorded) as one detail line. */
function headerDetails(label: string, headers: Record<string, string> | undefined): [string, string][] {
  if (!headers || Object.keys(headers).length === 0) return [];
  return [
    [
      label,
      Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}`)
        .join('; '),
    ],
  ];
}

function attemptEntry(
  target: string,
  a: AttemptRecord,
  of: number | undefined,
  circuit: string,
): TimelineEntry {
  const ok = a.status !== undefined && a.status < 300;
  return {
    at: iso(a.at),
    kind: 'attempt',
    target,
    title: `Attempt ${a.number}${of ? ` of ${of}` : ''} to ${target}: ${a.status ?? a.error ?? 'no answer'}`,
    details: [
      ['duration', a.ms !== undefined ? `${a.ms} ms` : '-'],
      ['status', a.status !== undefined ? String(a.status) : `no answer (${a.error ?? 'unknown'})`],
      ['trigger', a.trigger ?? 'bitbucket'],
      ['circuit', circuit],
      ...headerDetails('request headers', a.requestHeaders),
      ...headerDetails('response headers', a.responseHeaders),
    ],
    tone: ok ? 'good' : 'bad',
  };
}

function outcomeEntry(target: string, state: TargetState | null, info: TargetRuntimeInfo): TimelineEntry {
  const s =
    state?.state ??
    (info.jobState === 'completed' ? 'delivered' : info.jobState === 'failed' ? 'dead' : 'pending');
  const details: [string, string][] = [
    ['state', s],
    ['job', `${info.jobState}`],
  ];
  if (state?.reason) details.push(['reason', state.reason]);
  if (state?.excerpt) details.push(['response excerpt', state.excerpt]);
  if (info.nextRetryAt) details.push(['next retry', new Date(info.nextRetryAt).toISOString()]);
  const tone = s === 'delivered' ? 'good' : s === 'dead' ? 'bad' : s === 'pending' ? 'info' : 'warn';
  return { at: iso(state?.updatedAt), kind: 'outcome', target, title: `${target}: ${s}`, details, tone };
}

/** BullMQ keeps a delayed job's due time in the delayed ZSET's score, shifted left by 12 bits. */
async function nextRetry(
  deps: AdminDeps,
  target: string,
  eventId: string,
  jobId: string,
): Promise<number | undefined> {
  const queue = deps.queues.forEvent(target, eventId);
  if (!queue) return undefined;
  const score = await deps.redis.zscore(queue.keys.delayed!, jobId);
  return score === null ? undefined : Math.floor(Number(score) / 0x1000);
}

export async function targetInfo(
  deps: AdminDeps,
  eventId: string,
  target: string,
): Promise<TargetRuntimeInfo> {
  const queue = deps.queues.forEvent(target, eventId);
  const jobId = deliveryJobId(eventId, target);
  const job = queue ? await queue.getJob(jobId) : undefined;
  const jobState = job ? await job.getState() : 'unknown';
  const [next, openUntil] = await Promise.all([
    jobState === 'delayed' ? nextRetry(deps, target, eventId, jobId) : undefined,
    deps.redis.hget(deps.keys.circuit(target), 'openUntil'),
  ]);
  return {
    jobState,
    ...(job?.opts.attempts ? { maxAttempts: job.opts.attempts } : {}),
    ...(next ? { nextRetryAt: next } : {}),
    ...(Number(openUntil) > Date.now() ? { circuitOpenUntil: Number(openUntil) } : {}),
  };
}

export async function buildTimeline(deps: AdminDeps, id: string): Promise<Timeline> {
  const [stored, parts] = await Promise.all([deps.store.read(id), readEventParts(deps, id)]);
  const { meta, states } = parts;
  if (!meta || !stored) return { id, found: false, entries: [] };
  const routing = { ...parts.routing, ...(stored.routedAt ? { routedAt: stored.routedAt } : {}) };
  const entries = receivedEntries(deps, meta, stored.headers, stored.body.length, stored.quarantine, routing);
  // The deliveries carry the routed record's id (the same but on a cluster, see keys.ts).
  const deliveryId = parts.routing.routedAs ?? id;
  for (const target of meta.targets) {
    const state = states.get(target) ?? null;
    const info = await targetInfo(deps, deliveryId, target);
    const circuit = info.circuitOpenUntil
      ? `open until ${new Date(info.circuitOpenUntil).toISOString()}`
      : 'closed';
    if (state?.state === 'suppressed')
      entries.push(loopGuardEntry(deps.config, target, state, meta.envelope));
    if (state?.state === 'coalesced')
      entries.push({
        at: iso(state.updatedAt),
        kind: 'coalescing',
        target,
        title: `Coalesced: superseded by a newer push to the same ref`,
        details: [['superseded by', state.supersededBy ?? '-']],
        tone: 'warn',
      });
    for (const a of state?.attempts ?? []) entries.push(attemptEntry(target, a, info.maxAttempts, circuit));
    entries.push(outcomeEntry(target, state, info));
  }
  return { id, found: true, entries };
}

/**
 * The timeline as text, for the CLI. `shown` renders each title and value: the CLI passes its printable(), as
 * they carry names and messages from payloads and answers from targets.
 */
export function timelineText(t: Timeline, shown: (value: string) => string = (value) => value): string {
  const lines: string[] = [];
  for (const e of t.entries) {
    lines.push(`${e.at ?? '-'.padEnd(24)}  ${shown(e.title)}`);
    for (const [label, value] of e.details) lines.push(`${' '.repeat(26)}${label}: ${shown(value)}`);
  }
  return lines.join('\n');
}
