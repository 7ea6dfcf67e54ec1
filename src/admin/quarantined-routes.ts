import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { describeFilter, parseLimit, parseOffset, parseQueryFilter } from './filters.js';
import { QuarantinedEvents } from './quarantined.js';

export async function quarantinedRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  const quarantine = new QuarantinedEvents(deps);

  app.get<{ Querystring: Record<string, string> }>('/api/quarantined', async (req) => {
    const filter = parseQueryFilter(req.query, deps.config);
    const page = await quarantine.list(filter, parseLimit(req.query.limit), parseOffset(req.query.cursor));
    audit(req, {
      action: 'quarantined.list',
      filter: describeFilter(filter),
      count: page.quarantined.length,
    });
    return {
      quarantined: page.quarantined,
      ...(page.total === undefined ? {} : { total: page.total }),
      nextCursor: page.nextOffset === null ? null : String(page.nextOffset),
    };
  });

  for (const action of ['release', 'discard'] as const) {
    app.post<{ Params: { id: string } }>(`/api/quarantined/:id/${action}`, async (req) => {
      try {
        const found = await quarantine.get(req.params.id);
        const result =
          action === 'release' ? await quarantine.release(found) : await quarantine.discard(found);
        audit(req, { action: `quarantined.${action}`, ids: [req.params.id], count: 1 });
        return { [action === 'release' ? 'released' : 'discarded']: 1, ...result };
      } catch (err) {
        audit(req, { action: `quarantined.${action}`, ids: [req.params.id], count: 0, outcome: 'failed' });
        throw err;
      }
    });
  }
}
