import type { FastifyInstance } from 'fastify';
import { afterEach } from 'vitest';
import { buildIngressApp } from '../../src/app.js';
import type { Config } from '../../src/config/types.js';
import { type FanOut, type FanOutOptions, startFanOut } from '../../src/fanout/fan-out.js';
import type { Logger } from '../../src/log.js';
import { checkDurability } from '../../src/queue/durability.js';
import { createRuntime, type Runtime, waitForRedis } from '../../src/runtime.js';
import { testConfig } from './config.js';
import { captureLogs } from './logs.js';

export interface TestIngress {
  url: string;
  app: FastifyInstance;
  runtime: Runtime;
  /** The fan-out that routes what this ingress received (absent when started without one). */
  fanOut?: FanOut;
  close(): Promise<void>;
}

/**
 * The real ingress on 127.0.0.1:0 against a real Redis, with the fan-out that routes what it receives (in
 * production that runs in the worker processes; `fanOut: false` leaves events `received`).
 */
export async function startIngress(
  config: Config,
  log: Logger,
  opts: { fanOut?: boolean | FanOutOptions } = {},
): Promise<TestIngress> {
  const runtime = await createRuntime(config, log);
  await waitForRedis(runtime.redis, 5000);
  runtime.store.waitAof = (await checkDurability(runtime.redis, config, log)).waitAof;
  runtime.store.durabilityChecked = true;
  await Promise.all(runtime.queues.all().map((q) => q.queue.waitUntilReady()));
  const app = buildIngressApp(runtime);
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const fanOut =
    opts.fanOut === false
      ? undefined
      : startFanOut(runtime, { blockMs: 200, ...(typeof opts.fanOut === 'object' ? opts.fanOut : {}) });
  return {
    url,
    app,
    runtime,
    ...(fanOut ? { fanOut } : {}),
    async close() {
      await app.close();
      await fanOut?.close();
      await runtime.close();
    },
  };
}

/**
 * For a test file: `ingress(overrides)` starts the real ingress on a fresh config against the file's Redis,
 * capturing its logs; every one started is closed after each test.
 */
export function useIngress(redisUrl: () => string) {
  const open: TestIngress[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((i) => i.close()));
  });
  return async function ingress(overrides: Record<string, unknown> = {}) {
    const config = testConfig(redisUrl(), overrides);
    const logs = captureLogs();
    const ing = await startIngress(config, logs.log);
    open.push(ing);
    return { ing, config, logs };
  };
}
