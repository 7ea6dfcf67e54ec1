import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { buildAdminApp } from '../../src/admin/admin-app.js';
import { indexDeadLetter } from '../../src/queue/dead-letter-index.js';
import { recordAttempt } from '../../src/queue/delivery-state.js';
import type { DeliveryJobData } from '../../src/relay/job-types.js';
import type { Runtime } from '../../src/runtime.js';

/** Polls until `check` holds (the machine is shared: generous timeouts, no fixed sleeps). */
export async function waitFor<T>(
  check: () => Promise<T | undefined | null | false> | T,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
}

/** The real admin app on 127.0.0.1:0 over a runtime (usually the test ingress's, so both share Redis). */
export async function startAdmin(
  runtime: Runtime,
): Promise<{ url: string; app: FastifyInstance; close(): Promise<void> }> {
  const app = await buildAdminApp(runtime);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, app, close: () => app.close() };
}

export type Outcome =
  | { ok: true }
  | { status: number; excerpt?: string }
  | { error: string }
  | { suppress: string };

/**
 * A stand-in for the delivery worker, writing the same structures (job outcome in BullMQ, state in the event
 * hash, the suppressed ZSET) so that the admin side can be tested before and independently of the real one.
 * `decide` scripts each job's outcome.
 */
export function scriptedWorker(
  runtime: Runtime,
  target: string,
  decide: (job: Job<DeliveryJobData>) => Outcome,
) {
  const connection = new Redis(runtime.config.redis.url!, { maxRetriesPerRequest: null });
  const seen: { id: string; data: DeliveryJobData }[] = [];
  const worker = new Worker<DeliveryJobData>(
    runtime.keys.queueName(target),
    async (job) => {
      seen.push({ id: String(job.id), data: { ...job.data } });
      const key = runtime.keys.event(job.data.eventId);
      const n = job.attemptsMade + 1;
      const at = Date.now();
      const trigger = job.data.trigger ?? 'bitbucket';
      const outcome = decide(job);
      if ('ok' in outcome) {
        await recordAttempt(runtime.redis, key, target, {
          state: 'delivered',
          attempt: { number: n, at, ms: 3, status: 200, trigger },
        });
        return { status: 200 };
      }
      if ('suppress' in outcome) {
        await runtime.redis.zadd(runtime.keys.suppressed, Date.now(), `${job.data.eventId}.${target}`);
        await recordAttempt(runtime.redis, key, target, { state: 'suppressed', reason: outcome.suppress });
        return { suppressed: true };
      }
      if ('status' in outcome) {
        await recordAttempt(runtime.redis, key, target, {
          state: 'dead',
          attempt: { number: n, at, ms: 5, status: outcome.status, trigger },
          reason: `status ${outcome.status}`,
          ...(outcome.excerpt ? { excerpt: outcome.excerpt } : {}),
        });
        await indexDeadLetter(runtime.redis, runtime.keys, String(job.id));
        throw new UnrecoverableError(`target answered ${outcome.status}`);
      }
      await recordAttempt(runtime.redis, key, target, {
        state: 'dead',
        attempt: { number: n, at, ms: 10_000, error: outcome.error, trigger },
        reason: outcome.error,
      });
      await indexDeadLetter(runtime.redis, runtime.keys, String(job.id));
      throw new UnrecoverableError(outcome.error);
    },
    {
      // biome-ignore lint/suspicious/noExplicitAny: BullMQ types ioredis from its own copy
      connection: connection as any,
      prefix: runtime.keys.queuePrefix(target),
      concurrency: 4,
    },
  );
  worker.on('error', () => {});
  return {
    worker,
    seen,
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}

export async function api<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: T; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...opts.headers,
    },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let json: unknown = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, json: json as T, headers: res.headers };
}
