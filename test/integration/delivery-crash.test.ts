import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load-config.js';
import { readTargetState } from '../../src/queue/delivery-state.js';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { SECRETS } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';
import { startTargetServer, type TargetServer, waitUntil } from '../helpers/target-server.js';

const CHILD = fileURLToPath(new URL('../helpers/delivery-worker-child.ts', import.meta.url));

const db = useTestRedis();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let counter = 0;
/** The config as a tree, so a child process can build the same config (same prefix, same target). */
function tree(targetUrl: string, timeoutMs: number) {
  counter += 1;
  return {
    redis: { url: db.url, prefix: `crash${process.pid}x${counter}`, commandTimeout: 1000 },
    ingress: { host: '127.0.0.1', port: 0 },
    sources: [{ id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] }],
    targets: [
      { id: 'ci', url: targetUrl, timeout: timeoutMs, retry: { attempts: 5, delay: 50, maxDelay: 100 } },
    ],
    routes: [{ source: 'cloud', targets: ['ci'] }],
    log: { level: 'warn' },
  };
}

/** A delivery worker in its own process; resolves once it says it runs. */
async function workerProcess(config: unknown): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((res, rej) => {
    child.stdout!.on('data', (c: Buffer) => {
      if (c.toString().includes('ready')) res();
    });
    child.once('exit', (code) => rej(new Error(`worker exited early (${code}): ${err}`)));
  });
  return child;
}

async function setup(behaviour: Parameters<typeof startTargetServer>[0], timeoutMs: number) {
  const t: TargetServer = await startTargetServer(behaviour);
  cleanups.push(() => t.close());
  const raw = tree(t.url, timeoutMs);
  const ing: TestIngress = await startIngress(buildConfig(raw, {}), captureLogs().log);
  cleanups.push(() => ing.close());
  const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
  expect(res.status).toBe(202);
  const id = String(res.json.id);
  return {
    t,
    raw,
    ing,
    id,
    state: () => readTargetState(ing.runtime.redis, ing.runtime.keys.event(id), 'ci'),
  };
}

describe('crashes and shutdown', () => {
  it('a SIGKILLed worker’s delivery is redelivered once, with the same Idempotency-Key, by another worker', async () => {
    let hang = true;
    const { t, raw, id, state } = await setup(() => (hang ? { hang: true } : { status: 200 }), 1500);
    const first = await workerProcess(raw);
    await t.waitFor(1, 30_000);
    // Killed in the middle of the request: nothing recorded, the job is still active under a lock that lapses.
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    hang = false;
    const second = await workerProcess(raw);
    await waitUntil(async () => (await state())?.state === 'delivered', 40_000, 'redelivery');
    expect(t.received).toHaveLength(2);
    const [a, b] = t.received;
    expect(b!.headers['idempotency-key']).toBe(`${id}.ci`);
    expect(b!.headers['idempotency-key']).toBe(a!.headers['idempotency-key']);
    expect(b!.body.equals(a!.body)).toBe(true);
    const s = await state();
    expect(s?.attempts).toHaveLength(1);
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    expect(t.received).toHaveLength(2);
  });

  it('SIGTERM lets an in-flight delivery finish before the worker exits', async () => {
    const { t, raw, state } = await setup(() => ({ status: 200, delayMs: 1000 }), 5000);
    const child = await workerProcess(raw);
    await t.waitFor(1, 30_000);
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect((await state())?.state).toBe('delivered');
    expect(t.received).toHaveLength(1);
  });

  it('waits as long as the slowest target may take by default, and only worker.shutdownGrace when set', async () => {
    // A 3 s answer from a target allowed 4 s: the default grace (timeout + 2 s) lets it finish.
    const slow = await setup(() => ({ status: 200, delayMs: 3000 }), 4000);
    const patient = await workerProcess(slow.raw);
    await slow.t.waitFor(1, 30_000);
    patient.kill('SIGTERM');
    expect(await new Promise((r) => patient.once('exit', (c) => r(c)))).toBe(0);
    expect((await slow.state())?.state).toBe('delivered');

    // The same with shutdownGrace 300ms: the worker stops before the answer; the delivery stays owed, not lost.
    const cut = await setup(() => ({ status: 200, delayMs: 3000 }), 4000);
    const hasty = await workerProcess({ ...cut.raw, worker: { shutdownGrace: '300ms' } });
    await cut.t.waitFor(1, 30_000);
    const stoppedAt = Date.now();
    hasty.kill('SIGTERM');
    await new Promise((r) => hasty.once('exit', r));
    expect(Date.now() - stoppedAt).toBeLessThan(2500);
    // The cut-off request was recorded as an attempt to retry, and the next worker sends it with the same key.
    expect((await cut.state())?.state).toBe('retrying');
    const next = await workerProcess(cut.raw);
    await waitUntil(
      async () => (await cut.state())?.state === 'delivered',
      30_000,
      'the retry after shutdown',
    );
    next.kill('SIGTERM');
    await new Promise((r) => next.once('exit', r));
    const keys = cut.t.received.map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });
});
