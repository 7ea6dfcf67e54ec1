import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { bulkAnswer, parseBulk, runBulk } from './bulk-body.js';
import { decodeCursor, describeFilter, encodeCursor, parseLimit, parseQueryFilter } from './filters.js';
import { isIndexPosition } from './index-pages.js';
import { SuppressedDeliveries } from './suppressed.js';

export async function suppressedRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  const sup = new SuppressedDeliveries(deps);

  app.get<{ Querystring: Record<string, string> }>('/api/suppressed', async (req) => {
    const filter = parseQueryFilter(req.query, deps.config);
    const page = await sup.list(
      filter,
      parseLimit(req.query.limit),
      decodeCursor(req.query.cursor, isIndexPosition),
    );
    audit(req, { action: 'suppressed.list', filter: describeFilter(filter), count: page.suppressed.length });
    return {
      suppressed: page.suppressed,
      total: page.total,
      nextCursor: page.next ? encodeCursor(page.next) : null,
    };
  });

  app.post<{ Params: { id: string } }>('/api/suppressed/:id/release', async (req) => {
    try {
      const result = await sup.release(await sup.get(req.params.id));
      audit(req, { action: 'suppressed.release', ids: [req.params.id], count: 1 });
      return { released: 1, ...result };
    } catch (err) {
      audit(req, { action: 'suppressed.release', ids: [req.params.id], count: 0, outcome: 'failed' });
      throw err;
    }
  });

  app.post('/api/suppressed/release', async (req) => {
    const bulk = parseBulk(req.body, deps.config);
    const items = bulk.ids
      ? await Promise.all(bulk.ids.map((id) => sup.get(id)))
      : await sup.find(bulk.filter);
    const o = await runBulk(items, bulk.dryRun, (l) => sup.release(l));
    audit(req, {
      action: bulk.dryRun ? 'suppressed.release.dry-run' : 'suppressed.release',
      filter: describeFilter(bulk.filter),
      count: o.done.length,
      ids: o.done,
      failed: o.failed.length,
    });
    return bulkAnswer(o, 'released');
  });
}
