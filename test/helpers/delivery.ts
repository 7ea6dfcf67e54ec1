import { Redis } from 'ioredis';
import type { Config } from '../../src/config/types.js';
import { startDeliveryWorkers } from '../../src/delivery/workers.js';
import { readTargetState, type TargetState } from '../../src/queue/delivery-state.js';
import { testConfig } from './config.js';
import { startIngress, type TestIngress } from './ingress.js';
import { captureLogs } from './logs.js';
import { waitUntil } from './target-server.js';

/** Short delays so retries and dead letters happen within a test's time. */
export function target(
  id: string,
  url: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    url,
    timeout: 1000,
    concurrency: 2,
    retry: { attempts: 4, delay: 50, maxDelay: 200 },
    ...extra,
  };
}

export interface TestRelay {
  ing: TestIngress;
  config: Config;
  logs: ReturnType<typeof captureLogs>;
  startWorkers(): void;
  state(eventId: string, targetId: string): Promise<TargetState | null>;
  settled(eventId: string, targetId: string, states?: string[], timeoutMs?: number): Promise<TargetState>;
  close(): Promise<void>;
}

/** The real ingress and (unless asked not to) the real delivery workers, against a real Redis. */
export async function startRelay(
  redisUrl: string,
  targets: Record<string, unknown>[],
  overrides: Record<string, unknown> = {},
  opts: { workers?: boolean } = {},
): Promise<TestRelay> {
  const ids = targets.map((t) => String(t.id));
  const config = testConfig(redisUrl, {
    targets,
    routes: [
      { source: 'cloud', targets: ids },
      { source: 'dc', targets: ids },
    ],
    ...overrides,
  });
  const logs = captureLogs();
  const ing = await startIngress(config, logs.log);
  const inspect = new Redis(redisUrl);
  let workers: ReturnType<typeof startDeliveryWorkers> | undefined;
  const relay: TestRelay = {
    ing,
    config,
    logs,
    startWorkers() {
      workers ??= startDeliveryWorkers(ing.runtime);
    },
    state: (eventId, targetId) => readTargetState(inspect, ing.runtime.keys.event(eventId), targetId),
    async settled(
      eventId,
      targetId,
      states = ['delivered', 'dead', 'suppressed', 'coalesced', 'not-applicable'],
      timeoutMs = 20_000,
    ) {
      let last: TargetState | null = null;
      await waitUntil(
        async () => {
          last = await relay.state(eventId, targetId);
          return last !== null && states.includes(last.state);
        },
        timeoutMs,
        `${eventId}.${targetId} to be ${states.join('|')}`,
      );
      return last!;
    },
    async close() {
      await workers?.close();
      await ing.close();
      inspect.disconnect();
    },
  };
  if (opts.workers !== false) relay.startWorkers();
  return relay;
}
