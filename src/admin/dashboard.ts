import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RelayError } from '../errors.js';
import type { AdminDeps } from './admin-deps.js';
import type { Audit } from './audit.js';
import { DeadLetters } from './dead-letters.js';

export const DASHBOARD_PATH = '/dashboard';

interface BoardParams {
  queueName?: string;
  jobId?: string;
  queueStatus?: string;
}

/**
 * bull-board behind the admin auth (the auth hook covers these routes like any other: viewers look,
 * operators act; cookie sessions for browsers). Its Retry buttons on failed jobs are routed through the
 * dead-letter replay, so a replay from the browser is the same as one from the API or CLI: marked `replay`,
 * same Idempotency-Key, audited. Every other change the board offers is refused (403) and audited.
 */
export async function dashboard(
  app: FastifyInstance,
  deps: AdminDeps,
  audit: Audit,
  basePath: string,
): Promise<void> {
  const dl = new DeadLetters(deps);
  // A board queue is one target's queue in one shard (on a cluster): its actions stay within it.
  const queueByName = new Map(deps.queues.all().map((q) => [q.queue.name, q]));

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(`${basePath}${DASHBOARD_PATH}`);
  createBullBoard({
    queues: deps.queues.all().map(
      ({ targetId, shard, queue }) =>
        // biome-ignore lint/suspicious/noExplicitAny: bull-board types BullMQ's Queue from its own copy
        new BullMQAdapter(queue as any, {
          description: `deliveries to target ${targetId}${deps.keys.shards > 1 ? `, shard ${shard}` : ''}`,
        }),
    ),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'hookrelay',
        hideDocsLink: true,
        miscLinks: [{ text: 'Sign out', url: `${basePath}/logout` }],
      },
    },
  });

  const apiPrefix = `${DASHBOARD_PATH}/api/queues/`;
  app.addHook('preHandler', async (req: FastifyRequest, reply) => {
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const route = req.routeOptions.url ?? '';
    if (!route.startsWith(DASHBOARD_PATH)) return;
    const p = (req.params ?? {}) as BoardParams;
    const board = p.queueName ? queueByName.get(p.queueName) : undefined;
    const target = board?.targetId;
    const action = `dashboard ${req.method} ${route.slice(DASHBOARD_PATH.length)}`;

    if (route === `${apiPrefix}:queueName/:jobId/retry` && target && p.jobId) {
      const id = p.jobId;
      const loaded = await dl.get(id).catch((err: unknown) => {
        if (err instanceof RelayError && err.code === 'CONFLICT') return null; // not failed: bull-board's own retry
        throw err;
      });
      if (loaded) {
        await dl.replay(loaded, false);
        audit(req, { action: 'dead-letters.replay', via: 'dashboard', ids: [id], count: 1 });
        return reply.code(204).send();
      }
    }
    if (route === `${apiPrefix}:queueName/retry/:queueStatus` && target && p.queueStatus === 'failed') {
      const all = await dl.find({ target }, board.shard);
      let replayed = 0;
      for (const l of all) {
        try {
          await dl.replay(l, false);
          replayed += 1;
        } catch {
          // left the failed set meanwhile or expired: counted as skipped
        }
      }
      audit(req, { action: 'dead-letters.replay', via: 'dashboard', filter: { target }, count: replayed });
      return reply.send({ retried: replayed, skipped: all.length - replayed });
    }
    if (route === `${apiPrefix}:queueName/:jobId/clean` && target && p.jobId) {
      const loaded = await dl.get(p.jobId).catch(() => null);
      if (loaded) {
        await dl.purge(loaded, req.identity?.name ?? 'unknown');
        audit(req, { action: 'dead-letters.purge', via: 'dashboard', ids: [p.jobId], count: 1 });
        return reply.code(204).send();
      }
    }
    // Anything else would change deliveries without their record (empty, obliterate, clean a state, add, update
    // data, retry completed jobs, …): the board is for finding and replaying dead letters, not for that.
    audit(req, { action, params: p, outcome: 'denied' });
    return reply
      .code(403)
      .send({ error: 'FORBIDDEN', message: 'the dashboard only replays and purges dead letters' });
  });

  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
