import type { FastifyInstance } from 'fastify';
import { RelayError } from '../errors.js';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
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
  globMatch,
  parseFilter,
  parseLimit,
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
const isIndexCursor = (v: unknown): v is IndexCursor =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as IndexCursor).s === 'number' &&
  typeof (v as IndexCursor).m === 'string';

export interface EventListItem
  extends Pick<ReceivedView, 'id' | 'source' | 'eventKey' | 'repository' | 'receivedAt'> {
  refs: string[];
  targets: Record<string, string>;
}

export async function eventsRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  app.get<{ Params: { id: string } }>('/api/events/:id', async (req) => {
    const { id } = req.params;
    if (!EVENT_ID.test(id)) throw new RelayError('NOT_FOUND', 'no such event');
    const { meta, states } = await readEventParts(deps, id);
    audit(req, { action: 'events.show', ids: [id], count: meta ? 1 : 0 });
    if (!meta) throw new RelayError('NOT_FOUND', 'no such event (unknown or expired)');
    const targets: TargetView[] = await Promise.all(
      meta.targets.map((t) => targetView(deps.queues.get(t), id, t, states.get(t) ?? null)),
    );
    return { ...receivedView(id, meta), targets };
  });

  app.get<{ Querystring: Record<string, string> }>('/api/events', async (req) => {
    const filter = parseFilter(req.query, deps.config);
    const limit = parseLimit(req.query.limit);
    const cursor = decodeCursor(req.query.cursor, isIndexCursor);
    const page = await listEvents(deps, filter, limit, cursor);
    audit(req, { action: 'events.list', filter: describeFilter(filter), count: page.events.length });
    return page;
  });
}

async function listEvents(
  deps: AdminDeps,
  filter: Filter,
  limit: number,
  cursor: IndexCursor | undefined,
): Promise<{ events: EventListItem[]; nextCursor: string | null }> {
  const max = cursor ? String(cursor.s) : filter.until !== undefined ? `(${filter.until}` : '+inf';
  const min = filter.since !== undefined ? String(filter.since) : '-inf';
  const events: EventListItem[] = [];
  let offset = 0;
  let scanned = 0;
  let last: IndexCursor | undefined;
  for (;;) {
    const raw = await deps.redis.zrevrangebyscore(
      deps.keys.eventIndex,
      max,
      min,
      'WITHSCORES',
      'LIMIT',
      offset,
      BATCH,
    );
    if (raw.length === 0) return { events, nextCursor: null };
    offset += raw.length / 2;
    const batch: IndexCursor[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const entry = { m: raw[i]!, s: Number(raw[i + 1]) };
      // Same score as the cursor: members sort descending, so the ones not yet shown are the smaller ones.
      if (cursor && entry.s === cursor.s && entry.m >= cursor.m) continue;
      batch.push(entry);
    }
    const parts = await Promise.all(batch.map((e) => readEventParts(deps, e.m)));
    for (let i = 0; i < batch.length; i++) {
      const entry = batch[i]!;
      const { meta, states } = parts[i]!;
      scanned += 1;
      last = entry;
      if (meta && matches(meta, states, filter)) {
        const env = meta.envelope;
        events.push({
          id: entry.m,
          source: meta.sourceId,
          eventKey: env.eventKey,
          repository: env.repository,
          receivedAt: new Date(meta.receivedAt).toISOString(),
          refs: env.refs.map((r) => r.name),
          targets: Object.fromEntries(meta.targets.map((t) => [t, states.get(t)?.state ?? 'pending'])),
        });
        if (events.length === limit) return { events, nextCursor: encodeCursor(entry) };
      }
      if (scanned >= MAX_SCANNED_PER_PAGE) return { events, nextCursor: encodeCursor(last) };
    }
    if (raw.length / 2 < BATCH) return { events, nextCursor: null };
  }
}

function matches(
  meta: NonNullable<Awaited<ReturnType<typeof readEventParts>>['meta']>,
  states: Map<string, { state: string } | null>,
  f: Filter,
): boolean {
  if (f.source && meta.sourceId !== f.source) return false;
  if (f.repo && !globMatch(f.repo, meta.envelope.repository)) return false;
  if (f.eventKey && !globMatch(f.eventKey, meta.envelope.eventKey)) return false;
  if (f.target && !meta.targets.includes(f.target)) return false;
  if (f.state) {
    const pick = f.target ? [f.target] : meta.targets;
    if (!pick.some((t) => (states.get(t)?.state ?? 'pending') === f.state)) return false;
  }
  return true;
}
