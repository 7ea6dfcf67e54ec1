/**
 * One relay of the end-to-end bench, in its own process: `naive` (a bare Fastify route calling Queue.add and a
 * plain BullMQ Worker POSTing the body to the target, no checks), `reference` (the naive relay plus the work
 * per event that hookrelay's promises cannot do without, see plainRelay) or `hookrelay` (the real ingress,
 * fan-out and delivery workers with every check on).
 * Argument: JSON {mode, redisUrl, targetUrl, concurrency, secret, logLevel}.
 */
import { createHash, randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { request } from 'undici';
import { buildIngressApp } from '../src/app.js';
import { verifySignature } from '../src/bitbucket/signature.js';
import { newSecret, standardWebhookHeaders, webhookId } from '../src/delivery/signing.js';
import { startDeliveryWorkers } from '../src/delivery/workers.js';
import { startFanOut } from '../src/fanout/fan-out.js';
import { createLogger } from '../src/log.js';
import { createRuntime, waitForRedis } from '../src/runtime.js';
import { e2eRelayConfig } from './e2e-config.js';
import { ioredisEndpoint } from './harness.js';

interface Args {
  mode: 'naive' | 'reference' | 'hookrelay';
  /** hookrelay only: which roles this process runs (default both, as `hookrelay start`). */
  roles?: 'ingress' | 'worker' | 'both';
  redisUrl: string;
  targetUrl: string;
  concurrency: number;
  secret: string;
  logLevel: string;
  prefix: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;

/**
 * The naive relay; with `required`, also what any relay must do per event to keep hookrelay's promises, done
 * the plainest way with hookrelay's own functions: the signature checked over the raw bytes, the body hashed
 * (the replay guard's key) and a log line before the 202; the body parsed (validation), the Standard Webhooks
 * signature and a log line at delivery. No inbox or fan-out stage, no loop guard, branch order or records:
 * what separates it from hookrelay is what those cost.
 */
async function plainRelay(required: boolean): Promise<string> {
  const log = createLogger(args.logLevel, pino.destination({ dest: '/dev/null', sync: false }));
  const signingSecret = newSecret(32);
  const name = required ? 'reference' : 'naive';
  const producer = new Redis(ioredisEndpoint(args.redisUrl), { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: producer, prefix: args.prefix });
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/hooks/:source', async (req, reply) => {
    const body = req.body as Buffer;
    const id = randomUUID();
    const data: Record<string, unknown> = { body: body.toString('utf8'), rid: req.headers['x-request-uuid'] };
    if (required) {
      const signature = req.headers['x-hub-signature'];
      if (
        verifySignature(typeof signature === 'string' ? signature : undefined, body, [args.secret]) !== 'ok'
      ) {
        return reply.code(401).send({ error: 'SIGNATURE_INVALID' });
      }
      data.bodyHash = createHash('sha256').update(body).digest('base64url');
    }
    await queue.add('e', data, { jobId: id });
    if (required) log.info({ eventId: id, source: 'cloud' }, 'accepted');
    return reply.code(202).send({ id });
  });
  new Worker(
    name,
    async (job) => {
      const body = job.data.body as string;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-request-uuid': String(job.data.rid),
      };
      if (required) {
        JSON.parse(body);
        Object.assign(
          headers,
          standardWebhookHeaders(signingSecret, webhookId(String(job.id)), Buffer.from(body)),
        );
      }
      const res = await request(args.targetUrl, { method: 'POST', headers, body });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`status ${res.statusCode}`);
      if (required) log.info({ eventId: job.id, target: 'ci', status: res.statusCode }, 'delivered');
    },
    {
      connection: new Redis(ioredisEndpoint(args.redisUrl), { maxRetriesPerRequest: null }),
      prefix: args.prefix,
      concurrency: args.concurrency,
    },
  );
  return app.listen({ host: '127.0.0.1', port: 0 });
}

async function hookrelay(): Promise<string> {
  const config = e2eRelayConfig({
    redisUrl: args.redisUrl,
    prefix: args.prefix,
    targetUrl: args.targetUrl,
    secret: args.secret,
    concurrency: args.concurrency,
    logLevel: args.logLevel,
  });
  const log = createLogger(args.logLevel, pino.destination({ dest: '/dev/null', sync: false }));
  const runtime = await createRuntime(config, log);
  await waitForRedis(runtime.redis, 10_000);
  const roles = args.roles ?? 'both';
  // What `hookrelay start` runs: the ingress, the fan-out and the delivery workers in one process; or, as
  // `hookrelay ingress` and `hookrelay worker` do, the ingress alone or the other two.
  if (roles !== 'ingress') {
    startFanOut(runtime);
    startDeliveryWorkers(runtime);
  }
  if (roles === 'worker') return 'worker';
  const app = buildIngressApp(runtime);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

const url = args.mode === 'hookrelay' ? await hookrelay() : await plainRelay(args.mode === 'reference');
process.send?.({ url });
// The parent asks for this process's CPU time (user + system, µs) around each phase: CPU per event is the
// steadier figure on a shared, noisy machine.
// And how long its event loop was blocked at most during the steady phase (a tail with a free loop is queueing
// between processes, not work in this one).
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
process.on('message', (m: unknown) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  if (m === 'loop-delay-reset') loopDelay.reset();
  if (m === 'loop-delay') process.send?.({ loopDelayMs: loopDelay.max / 1e6 });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
