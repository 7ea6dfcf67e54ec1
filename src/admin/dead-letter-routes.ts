import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RelayError } from '../errors/index.js';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { type BulkOutcome, type BulkRequest, bulkAnswer, parseBulk, runBulk } from './bulk-body.js';
import { DeadLetters } from './dead-letters.js';
import { decodeCursor, describeFilter, encodeCursor, parseLimit, parseQueryFilter } from './filters.js';
import { isIndexPosition } from './index-pages.js';
import { ReplayBatches } from './replay-batches.js';

export const isDlCursor = isIndexPosition;

/** A bulk replay by ids or filter (every id is checked before any is replayed when ids are given). */
export async function bulkReplay(dl: DeadLetters, bulk: BulkRequest): Promise<BulkOutcome> {
  if (bulk.ids) await Promise.all(bulk.ids.map((id) => dl.get(id)));
  const items = bulk.ids ? bulk.ids.map((id) => ({ id })) : await dl.find(bulk.filter);
  return runBulk(items, bulk.dryRun, async (i) => dl.replay(await dl.get(i.id), bulk.fresh));
}

function freshFlag(body: unknown): boolean {
  const fresh = (body as { fresh?: unknown } | undefined)?.fresh;
  if (fresh !== undefined && typeof fresh !== 'boolean')
    throw new RelayError('BAD_REQUEST', 'fresh must be a boolean');
  return fresh === true;
}

export async function deadLetterRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  const dl = new DeadLetters(deps);
  const batches = new ReplayBatches(deps);
  const who = (req: FastifyRequest) => req.identity?.name ?? 'unknown';

  app.get<{ Querystring: Record<string, string> }>('/api/dead-letters', async (req) => {
    const filter = parseQueryFilter(req.query, deps.config);
    const limit = parseLimit(req.query.limit);
    const after = decodeCursor(req.query.cursor, isDlCursor);
    const page = await dl.list(filter, limit, after);
    audit(req, {
      action: 'dead-letters.list',
      filter: describeFilter(filter),
      count: page.deadLetters.length,
    });
    return {
      deadLetters: page.deadLetters,
      total: page.total,
      nextCursor: page.next ? encodeCursor(page.next) : null,
    };
  });

  app.get<{ Params: { id: string } }>('/api/dead-letters/:id', async (req) => {
    audit(req, { action: 'dead-letters.show', ids: [req.params.id] });
    return dl.show(req.params.id);
  });

  app.post<{ Params: { id: string } }>('/api/dead-letters/:id/replay', async (req) => {
    const fresh = freshFlag(req.body);
    try {
      const result = await dl.replay(await dl.get(req.params.id), fresh);
      audit(req, { action: 'dead-letters.replay', ids: [req.params.id], count: 1, fresh });
      return { replayed: 1, ...result };
    } catch (err) {
      audit(req, { action: 'dead-letters.replay', ids: [req.params.id], count: 0, fresh, outcome: 'failed' });
      throw err;
    }
  });

  app.delete<{ Params: { id: string } }>('/api/dead-letters/:id', async (req) => {
    try {
      await dl.purge(await dl.get(req.params.id), who(req));
      audit(req, { action: 'dead-letters.purge', ids: [req.params.id], count: 1 });
      return { purged: 1, ids: [req.params.id] };
    } catch (err) {
      audit(req, { action: 'dead-letters.purge', ids: [req.params.id], count: 0, outcome: 'failed' });
      throw err;
    }
  });

  app.post('/api/dead-letters/replay', async (req) => {
    const bulk = parseBulk(req.body, deps.config);
    const startedAt = Date.now();
    const o = await bulkReplay(dl, bulk);
    const batch =
      !bulk.dryRun && o.done.length > 0 ? await batches.create(o.done, who(req), startedAt) : undefined;
    audit(req, {
      action: bulk.dryRun ? 'dead-letters.replay.dry-run' : 'dead-letters.replay',
      filter: describeFilter(bulk.filter),
      count: o.done.length,
      ids: o.done,
      failed: o.failed.length,
      fresh: bulk.fresh,
      ...(batch ? { batch } : {}),
    });
    return { ...bulkAnswer(o, 'replayed'), ...(batch ? { batch } : {}) };
  });

  app.get<{ Params: { batch: string } }>('/api/dead-letters/replays/:batch', async (req) =>
    batches.status(req.params.batch),
  );

  const purge = async (req: FastifyRequest<{ Querystring: Record<string, string> }>) => {
    const bulk = parseBulk(req.body, deps.config, req.method === 'DELETE' ? req.query : undefined);
    const items = bulk.ids ? bulk.ids.map((id) => ({ id })) : await dl.find(bulk.filter);
    const o = await runBulk(items, bulk.dryRun, async (i) => dl.purge(await dl.get(i.id), who(req)));
    audit(req, {
      action: bulk.dryRun ? 'dead-letters.purge.dry-run' : 'dead-letters.purge',
      filter: describeFilter(bulk.filter),
      count: o.done.length,
      ids: o.done,
      failed: o.failed.length,
    });
    return bulkAnswer(o, 'purged');
  };
  app.post('/api/dead-letters/purge', purge);
  app.delete('/api/dead-letters', purge);
}
