import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { Targets } from './targets.js';

export async function targetRoutes(app: FastifyInstance, deps: AdminDeps, audit: Audit): Promise<void> {
  const targets = new Targets(deps);
  app.get('/api/targets', async () => ({ targets: await targets.all() }));
  app.get<{ Params: { id: string } }>('/api/targets/:id', async (req) => targets.health(req.params.id));
  for (const verb of ['pause', 'resume'] as const)
    app.post<{ Params: { id: string } }>(`/api/targets/:id/${verb}`, async (req) => {
      await targets[verb](req.params.id);
      audit(req, { action: `targets.${verb}`, ids: [req.params.id], count: 1 });
      return { target: req.params.id, paused: verb === 'pause' };
    });
}
