import type { FastifyInstance } from 'fastify';
import { RelayError } from '../errors/index.js';
import type { EventState } from '../queue/event-store.js';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { buildTimeline, type TimelineEntry } from './console/timeline.js';
import { matchesEvent } from './event-match.js';
import {
  type ReceivedView,
  readEventParts,
  receivedView,
  type TargetView,
  targetView,
} from './event-view.js';
import {
  decodeCursor,
  describeFilter,
  encodeCursor,
  type Filter,
  NO_ROUTE,
  parseLimit,
  parseQueryFilter,
} from './filters.js';

const EVENT_ID = /^[A-Za-z0-9-]{1,64}$/;
const BATCH = 200;
// A filter that matches nothing must not make one request walk the whole index: the page ends early and the
// cursor says where to go on.
const MAX_SCANNED_PER_PAGE = 5000;

interface IndexCursor {
  s: number;
  m: string;
}
export const isIndexCursor = (v: unknown): v is IndexCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as IndexCursor).s === 'number' &&
  typeof (v as IndexCursor).m === 'string';

export interface EventListItem
  extends Pick<ReceivedView, 'id' | 'source' | 'eventKey' | 'repository' | 'receivedAt' | 'hookId'> {
  refs: string[];
  targets: Record<string, string>;
  /** `received` until the fan-out has routed it. */
  state: EventState;
  /** Held back for its shape until an operator releases or discards it (GET /api/quarantined has why). */
  quarantined?: true;
}

/** `GET /api/events/:id`: what was received, each target's delivery, and the event's timeline. */
export interface EventDetail extends ReceivedView {
  targets: TargetView[];
  timeline: TimelineEntry[];
}

/** `GET /api/events`: a page of events, newest first, and the cursor of the next page (null at the end). */
export interface EventPage {
  events: EventListItem[];
  nextCursor: string | null;
}

export { listEvents };

export async function eventsRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  app.get<{ Params: { id: string } }>('/api/events/:id', async (req): Promise<EventDetail> => {
    const { id } = req.params;
    if (!EVENT_ID.test(id)) throw new RelayError('NOT_FOUND', 'no such event');
    const { meta, states, routing } = await readEventParts(deps, id);
    audit(req, { action: 'events.show', ids: [id], count: meta ? 1 : 0 });
    if (!meta) throw new RelayError('NOT_FOUND', 'no such event (unknown or expired)');
    // The deliveries carry the routed record's id (the same but on a cluster, see keys.ts).
    const deliveryId = routing.routedAs ?? id;
    const targets: TargetView[] = await Promise.all(
      meta.targets.map((t) =>
        targetView(deps.queues.forEvent(t, deliveryId), deliveryId, t, states.get(t) ?? null),
      ),
    );
    return { ...receivedView(id, meta, routing), targets, timeline: (await buildTimeline(deps, id)).entries };
  });

  app.get<{ Querystring: Record<string, string> }>('/api/events', async (req) => {
    const filter = parseQueryFilter(req.query, deps.config);
    const limit = parseLimit(req.query.limit);
    const cursor = decodeCursor(req.query.cursor, isIndexCursor);
    const page = await listEvents(deps, filter, limit, cursor);
    audit(req, { action: 'events.list', filter: describeFilter(filter), count: page.events.length });
    return page;
  });
}

/**
 * The event index, newest first, after the cursor: one index per shard (keys.ts), merged by (score, member)
 * descending, each read a batch at a time.
 */
async function* indexDescending(
  deps: AdminDeps,
  max: string,
  min: string,
  cursor: IndexCursor | undefined,
): AsyncGenerator<IndexCursor> {
  const shards = Array.from({ length: deps.keys.shards }, (_, shard) => ({
    key: deps.keys.eventIndexOf(shard),
    offset: 0,
    buffer: [] as IndexCursor[],
    done: false,
  }));
  const refill = async (sh: (typeof shards)[number]) => {
    const raw = await deps.redis.zrevrangebyscore(sh.key, max, min, 'WITHSCORES', 'LIMIT', sh.offset, BATCH);
    sh.offset += raw.length / 2;
    if (raw.length / 2 < BATCH) sh.done = true;
    for (let i = 0; i < raw.length; i += 2) {
      const entry = { m: raw[i]!, s: Number(raw[i + 1]) };
      // Same score as the cursor: members sort descending, so the ones not yet shown are the smaller ones.
      if (cursor && entry.s === cursor.s && entry.m >= cursor.m) continue;
      sh.buffer.push(entry);
    }
  };
  for (;;) {
    await Promise.all(shards.filter((sh) => sh.buffer.length === 0 && !sh.done).map(refill));
    let best: (typeof shards)[number] | undefined;
    for (const sh of shards) {
      const head = sh.buffer[0];
      if (!head) continue;
      const top = best?.buffer[0];
      if (!top || head.s > top.s || (head.s === top.s && head.m > top.m)) best = sh;
    }
    if (!best) {
      if (shards.every((sh) => sh.done)) return;
      continue;
    }
    yield best.buffer.shift()!;
  }
}

async function listEvents(
  deps: AdminDeps,
  filter: Filter,
  limit: number,
  cursor: IndexCursor | undefined,
): Promise<EventPage> {
  const max = cursor ? String(cursor.s) : filter.until !== undefined ? `(${filter.until}` : '+inf';
  const min = filter.since !== undefined ? String(filter.since) : '-inf';
  const events: EventListItem[] = [];
  let scanned = 0;
  let batch: IndexCursor[] = [];
  const index = indexDescending(deps, max, min, cursor);
  for (;;) {
    const next = await index.next();
    if (!next.done) batch.push(next.value);
    if (batch.length < BATCH && !next.done) continue;
    // Read a batch of events at once, then judge them in index order.
    const parts = await Promise.all(batch.map((e) => readEventParts(deps, e.m)));
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      const { meta, states, quarantine, routing } = parts[i]!;
      scanned += 1;
      // A routed record moved to another shard is listed under the id the ingress answered with (keys.ts).
      const moved = routing.receivedAs !== undefined && routing.receivedAs !== entry.m;
      if (meta && !moved && matches(entry.m, meta, states, quarantine, routing.state, filter)) {
        const env = meta.envelope;
        events.push({
          id: entry.m,
          source: meta.sourceId,
          eventKey: env.eventKey,
          repository: env.repository,
          receivedAt: new Date(meta.receivedAt).toISOString(),
          ...(env.hookId ? { hookId: env.hookId } : {}),
          refs: env.refs.map((r) => r.name),
          targets: Object.fromEntries(meta.targets.map((t) => [t, states.get(t)?.state ?? 'pending'])),
          state: routing.state ?? 'received',
          ...(quarantine ? { quarantined: true } : {}),
        });
        if (events.length === limit) return { events, nextCursor: encodeCursor(entry) };
      }
      if (scanned >= MAX_SCANNED_PER_PAGE) return { events, nextCursor: encodeCursor(entry) };
    }
    if (next.done) return { events, nextCursor: null };
    batch = [];
  }
}

function matches(
  id: string,
  meta: NonNullable<Awaited<ReturnType<typeof readEventParts>>['meta']>,
  states: Map<string, { state: string } | null>,
  quarantine: string | undefined,
  state: EventState | undefined,
  f: Filter,
): boolean {
  if (!matchesEvent(id, meta, f)) return false;
  if (f.state === 'received' || f.state === 'duplicate') return state === f.state;
  // A quarantined event has no deliveries yet: the event itself is in that state.
  if (f.state === 'quarantined')
    return quarantine !== undefined && (!f.target || meta.targets.includes(f.target));
  if (f.target && !meta.targets.includes(f.target)) return false;
  if (f.state === NO_ROUTE) return meta.targets.length === 0 && state === 'routed';
  if (f.state) {
    const pick = f.target ? [f.target] : meta.targets;
    if (!pick.some((t) => (states.get(t)?.state ?? 'pending') === f.state)) return false;
  }
  return true;
}
