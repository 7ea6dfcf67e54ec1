import helmet from '@fastify/helmet';
import view from '@fastify/view';
import { Eta } from 'eta';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RelayError } from '../../errors/index.js';
import type { AdminDeps } from '../admin-deps.js';
import type { Audit } from '../audit.js';
import { hasRole } from '../auth.js';
import { parseBulk } from '../bulk-body.js';
import { bulkReplay, isDlCursor } from '../dead-letter-routes.js';
import { DeadLetters } from '../dead-letters.js';
import { isIndexCursor, listEvents } from '../events-routes.js';
import {
  decodeCursor,
  describeFilter,
  encodeCursor,
  FILTER_STATES,
  type Filter,
  parseOffset,
  parseQueryFilter,
} from '../filters.js';
import { QuarantinedEvents } from '../quarantined.js';
import { ReplayBatches } from '../replay-batches.js';
import { SuppressedDeliveries } from '../suppressed.js';
import { Targets } from '../targets.js';
import { STYLESHEET, VIEWS_DIR } from './assets.js';
import { buildTimeline } from './timeline.js';

export const CONSOLE_PATH = '/console';
const PAGE_SIZE = 50;
const SAMPLE_SIZE = 10;
const PAYLOAD_SHOWN_BYTES = 512 * 1024;

type Query = Record<string, string>;

/**
 * The ops console: server-rendered pages over the same services as the admin API (events, dead letters,
 * suppressed deliveries, targets). Viewers read; an operator's actions are plain POST forms, which the auth hook
 * checks like any API change (operator role, same-origin for cookie sessions) and which are audited here.
 * Nothing is loaded from another origin: the stylesheet is served below and the CSP says `default-src 'self'`.
 */
export async function consoleRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit, basePath: string) {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        scriptSrc: ["'none'"],
      },
    },
    // Not helmet's `no-referrer`: under it Chromium sends `Origin: null` with a form POST, and the auth hook's
    // same-origin check (the CSRF defence) would refuse every operator action.
    referrerPolicy: { policy: 'same-origin' },
    // The admin port may be plain HTTP on a private network: never tell the browser to upgrade or pin HTTPS.
    strictTransportSecurity: false,
  });
  await app.register(view, {
    engine: { eta: new Eta({ autoEscape: true, autoTrim: false }) },
    templates: VIEWS_DIR,
    defaultContext: { base: basePath, consolePath: `${basePath}${CONSOLE_PATH}` },
  });

  const deadLetters = new DeadLetters(deps);
  const suppressed = new SuppressedDeliveries(deps);
  const quarantine = new QuarantinedEvents(deps);
  const targets = new Targets(deps);
  const batches = new ReplayBatches(deps);
  const home = `${basePath}${CONSOLE_PATH}`;
  const who = (req: FastifyRequest) => req.identity?.name ?? 'unknown';

  const render = (req: FastifyRequest, reply: FastifyReply, page: string, data: Record<string, unknown>) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .view(page, {
        identity: req.identity,
        canAct: !!req.identity && hasRole(req.identity, 'operator'),
        notice: (req.query as Query | undefined)?.notice ?? null,
        states: FILTER_STATES,
        sources: deps.config.sources.map((s) => s.id),
        targetIds: deps.config.targets.map((t) => t.id),
        nav: page,
        ...data,
      });

  /** A list page's filter: the query minus what belongs to the page (a notice after an action). */
  const filterOf = (query: Query): { filter: Filter; query: Query; error?: string } => {
    const { notice: _notice, ...rest } = query;
    const clean = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== ''));
    try {
      return { filter: parseQueryFilter(clean, deps.config), query: clean };
    } catch (err) {
      if (err instanceof RelayError) return { filter: {}, query: clean, error: err.message };
      throw err;
    }
  };
  const urlWith = (path: string, query: Query) => {
    const qs = new URLSearchParams(query).toString();
    return `${home}${path}${qs ? `?${qs}` : ''}`;
  };
  const back = (reply: FastifyReply, path: string, notice: string) =>
    reply.redirect(
      `${home}${path}${path.includes('?') ? '&' : '?'}notice=${encodeURIComponent(notice)}`,
      303,
    );

  app.get(`${CONSOLE_PATH}/console.css`, { config: { public: true } }, async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=300').send(STYLESHEET),
  );
  app.get(CONSOLE_PATH, async (_req, reply) => reply.redirect(`${home}/events`, 303));
  app.get(`${CONSOLE_PATH}/`, async (_req, reply) => reply.redirect(`${home}/events`, 303));

  // ---- events
  app.get<{ Querystring: Query }>(`${CONSOLE_PATH}/events`, async (req, reply) => {
    const { cursor, limit: _limit, ...q } = req.query;
    const { filter, query, error } = filterOf(q);
    const { page, pageError } = await loadPage(error, { events: [], nextCursor: null }, () =>
      listEvents(deps, filter, PAGE_SIZE, decodeCursor(cursor, isIndexCursor)),
    );
    audit(req, {
      action: 'events.list',
      via: 'console',
      filter: describeFilter(filter),
      count: page.events.length,
    });
    return render(req, reply, 'events', {
      title: 'Events',
      query,
      error: pageError,
      events: page.events,
      nextUrl: page.nextCursor ? urlWith('/events', { ...query, cursor: page.nextCursor }) : null,
    });
  });

  app.get<{ Params: { id: string } }>(`${CONSOLE_PATH}/events/:id`, async (req, reply) => {
    const id = req.params.id;
    const timeline = /^[A-Za-z0-9-]{1,64}$/.test(id)
      ? await buildTimeline(deps, id)
      : { id, found: false, entries: [] };
    audit(req, { action: 'events.show', via: 'console', ids: [id], count: timeline.found ? 1 : 0 });
    let payload: string | null = null;
    const canAct = !!req.identity && hasRole(req.identity, 'operator');
    if (timeline.found && canAct) payload = await prettyPayload(deps, id);
    if (!timeline.found) reply.code(404);
    return render(req, reply, 'event', { title: `Event ${id}`, id, timeline, payload });
  });

  // The original bytes as Bitbucket sent them (operators only: a payload can name private repositories).
  app.get<{ Params: { id: string } }>(`${CONSOLE_PATH}/events/:id/payload`, async (req, reply) => {
    requireOperator(req, audit);
    const event = /^[A-Za-z0-9-]{1,64}$/.test(req.params.id) ? await deps.store.read(req.params.id) : null;
    if (!event) throw new RelayError('NOT_FOUND', 'no such event (unknown or expired)');
    audit(req, { action: 'events.payload', via: 'console', ids: [event.id], count: 1 });
    return reply
      .type(event.headers['content-type'] ?? 'application/json')
      .header('content-disposition', `attachment; filename="${event.id}.json"`)
      .header('cache-control', 'no-store')
      .send(event.body);
  });

  // ---- dead letters
  app.get<{ Querystring: Query }>(`${CONSOLE_PATH}/dead-letters`, async (req, reply) => {
    const { cursor, limit: _limit, ...q } = req.query;
    const { filter, query, error } = filterOf(q);
    const { page, pageError } = await loadPage(error, { deadLetters: [], total: 0 }, () =>
      deadLetters.list(filter, PAGE_SIZE, decodeCursor(cursor, isDlCursor)),
    );
    audit(req, {
      action: 'dead-letters.list',
      via: 'console',
      filter: describeFilter(filter),
      count: page.deadLetters.length,
    });
    return render(req, reply, 'dead-letters', {
      title: 'Dead letters',
      query,
      error: pageError,
      page,
      here: urlWith('/dead-letters', query).slice(home.length),
      previewUrl: urlWith('/dead-letters/replay', query),
      nextUrl: page.next ? urlWith('/dead-letters', { ...query, cursor: encodeCursor(page.next) }) : null,
    });
  });

  // The preview before a bulk replay: how many, which ones, and the confirmation form.
  app.get<{ Querystring: Query }>(`${CONSOLE_PATH}/dead-letters/replay`, async (req, reply) => {
    requireOperator(req, audit);
    const { filter, query, error } = filterOf(req.query);
    const matched = error || Object.keys(filter).length === 0 ? [] : await deadLetters.find(filter);
    audit(req, {
      action: 'dead-letters.replay.preview',
      via: 'console',
      filter: describeFilter(filter),
      count: matched.length,
    });
    return render(req, reply, 'replay-preview', {
      title: 'Replay dead letters',
      query,
      error:
        error ??
        (Object.keys(filter).length === 0
          ? 'Choose a filter first: there is no replay-everything.'
          : undefined),
      count: matched.length,
      sample: matched.slice(0, SAMPLE_SIZE).map((i) => ({
        id: i.id,
        target: i.target,
        repository: i.meta?.envelope.repository ?? '-',
        eventKey: i.meta?.envelope.eventKey ?? '-',
        reason: i.state?.reason ?? '-',
        failedAt: new Date(i.failedAt).toISOString(),
      })),
    });
  });

  app.post<{ Body: Query }>(`${CONSOLE_PATH}/dead-letters/replay`, async (req, reply) => {
    const { fresh, confirm, ...fields } = req.body ?? {};
    if (confirm !== 'yes') throw new RelayError('BAD_REQUEST', 'the replay was not confirmed');
    const filterFields = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ''));
    const bulk = parseBulk({ ...filterFields, fresh: fresh === 'on' }, deps.config);
    const startedAt = Date.now();
    const outcome = await bulkReplay(deadLetters, bulk);
    const batch = await batches.create(outcome.done, who(req), startedAt);
    audit(req, {
      action: 'dead-letters.replay',
      via: 'console',
      filter: describeFilter(bulk.filter),
      count: outcome.done.length,
      ids: outcome.done,
      failed: outcome.failed.length,
      fresh: bulk.fresh,
      batch,
    });
    return reply.redirect(`${home}/replays/${batch}`, 303);
  });

  app.get<{ Params: { batch: string } }>(`${CONSOLE_PATH}/replays/:batch`, async (req, reply) => {
    const status = await batches.status(req.params.batch);
    if (!status.done) reply.header('refresh', '2');
    return render(req, reply, 'replay', { title: 'Replay progress', status });
  });

  app.post<{ Params: { id: string }; Body: Query }>(
    `${CONSOLE_PATH}/dead-letters/:id/replay`,
    async (req, reply) => {
      const fresh = req.body?.fresh === 'on';
      const loaded = await deadLetters.get(req.params.id);
      const startedAt = Date.now();
      await deadLetters.replay(loaded, fresh);
      const batch = await batches.create([req.params.id], who(req), startedAt);
      audit(req, {
        action: 'dead-letters.replay',
        via: 'console',
        ids: [req.params.id],
        count: 1,
        fresh,
        batch,
      });
      return reply.redirect(`${home}/replays/${batch}`, 303);
    },
  );

  app.post<{ Params: { id: string }; Body: Query }>(
    `${CONSOLE_PATH}/dead-letters/:id/purge`,
    async (req, reply) => {
      await deadLetters.purge(await deadLetters.get(req.params.id), who(req));
      audit(req, { action: 'dead-letters.purge', via: 'console', ids: [req.params.id], count: 1 });
      return back(reply, safeReturn(req.body?.return, '/dead-letters'), `Purged ${req.params.id}`);
    },
  );

  // ---- suppressed
  app.get<{ Querystring: Query }>(`${CONSOLE_PATH}/suppressed`, async (req, reply) => {
    const { cursor, limit: _limit, ...q } = req.query;
    const { filter, query, error } = filterOf(q);
    const { page, pageError } = await loadPage<Awaited<ReturnType<SuppressedDeliveries['list']>>>(
      error,
      { suppressed: [], total: 0 },
      () => suppressed.list(filter, PAGE_SIZE, decodeCursor(cursor, isDlCursor)),
    );
    audit(req, {
      action: 'suppressed.list',
      via: 'console',
      filter: describeFilter(filter),
      count: page.suppressed.length,
    });
    return render(req, reply, 'suppressed', {
      title: 'Suppressed',
      query,
      error: pageError,
      page,
      here: urlWith('/suppressed', query).slice(home.length),
      nextUrl: page.next ? urlWith('/suppressed', { ...query, cursor: encodeCursor(page.next) }) : null,
    });
  });

  for (const verb of ['release', 'discard'] as const)
    app.post<{ Params: { id: string }; Body: Query }>(
      `${CONSOLE_PATH}/suppressed/:id/${verb}`,
      async (req, reply) => {
        const loaded = await suppressed.get(req.params.id);
        await suppressed[verb](loaded);
        audit(req, { action: `suppressed.${verb}`, via: 'console', ids: [req.params.id], count: 1 });
        const done = verb === 'release' ? 'Released' : 'Discarded';
        return back(reply, safeReturn(req.body?.return, '/suppressed'), `${done} ${req.params.id}`);
      },
    );

  // ---- quarantined
  app.get<{ Querystring: Query }>(`${CONSOLE_PATH}/quarantined`, async (req, reply) => {
    const { cursor, limit: _limit, ...q } = req.query;
    const { filter, query, error } = filterOf(q);
    const { page, pageError } = await loadPage<Awaited<ReturnType<QuarantinedEvents['list']>>>(
      error,
      { quarantined: [], total: 0, nextOffset: null },
      async () => quarantine.list(filter, PAGE_SIZE, parseOffset(cursor)),
    );
    audit(req, {
      action: 'quarantined.list',
      via: 'console',
      filter: describeFilter(filter),
      count: page.quarantined.length,
    });
    return render(req, reply, 'quarantined', {
      title: 'Quarantined',
      query,
      error: pageError,
      page,
      here: urlWith('/quarantined', query).slice(home.length),
      nextUrl:
        page.nextOffset === null
          ? null
          : urlWith('/quarantined', { ...query, cursor: String(page.nextOffset) }),
    });
  });

  for (const verb of ['release', 'discard'] as const)
    app.post<{ Params: { id: string }; Body: Query }>(
      `${CONSOLE_PATH}/quarantined/:id/${verb}`,
      async (req, reply) => {
        const found = await quarantine.get(req.params.id);
        await quarantine[verb](found);
        audit(req, { action: `quarantined.${verb}`, via: 'console', ids: [req.params.id], count: 1 });
        const done = verb === 'release' ? 'Released' : 'Discarded';
        return back(reply, safeReturn(req.body?.return, '/quarantined'), `${done} ${req.params.id}`);
      },
    );

  // ---- targets
  app.get(`${CONSOLE_PATH}/targets`, async (req, reply) => {
    const list = await targets.all();
    return render(req, reply, 'targets', { title: 'Targets', targets: list, now: Date.now() });
  });

  for (const verb of ['pause', 'resume'] as const)
    app.post<{ Params: { id: string } }>(`${CONSOLE_PATH}/targets/:id/${verb}`, async (req, reply) => {
      await targets[verb](req.params.id);
      audit(req, { action: `targets.${verb}`, via: 'console', ids: [req.params.id], count: 1 });
      return back(reply, '/targets', `${verb === 'pause' ? 'Paused' : 'Resumed'} ${req.params.id}`);
    });
}

/** A list page's data, or the reason it could not be read (a bad filter or cursor) shown on the page. */
async function loadPage<T>(
  filterError: string | undefined,
  empty: T,
  load: () => Promise<T>,
): Promise<{ page: T; pageError: string | undefined }> {
  if (filterError) return { page: empty, pageError: filterError };
  try {
    return { page: await load(), pageError: undefined };
  } catch (err) {
    if (!(err instanceof RelayError)) throw err;
    return { page: empty, pageError: err.message };
  }
}

/**
 * Operator-only pages that change nothing (the replay preview, the payload): a GET navigation carries no Origin
 * header, so they are not routed through the hook's operator check (which also asks for a same-origin Origin).
 */
function requireOperator(req: FastifyRequest, audit: Audit): void {
  if (req.identity && hasRole(req.identity, 'operator')) return;
  audit(req, { action: `GET ${req.routeOptions.url}`, outcome: 'denied', needed: 'operator' });
  throw new RelayError('FORBIDDEN', 'this page needs the operator role');
}

/** Only a console path of ours to go back to after an action. */
function safeReturn(value: unknown, fallback: string): string {
  const v = typeof value === 'string' ? value : '';
  return /^\/[A-Za-z0-9/_.?=&%:-]*$/.test(v) && !v.startsWith('//') ? v : fallback;
}

async function prettyPayload(deps: AdminDeps, id: string): Promise<string | null> {
  const event = await deps.store.read(id);
  if (!event) return null;
  const text = event.body.subarray(0, PAYLOAD_SHOWN_BYTES).toString('utf8');
  if (event.body.length > PAYLOAD_SHOWN_BYTES)
    return `${text}\n… (${event.body.length} bytes; download for all)`;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
