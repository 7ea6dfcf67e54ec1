import type { JobsOptions } from 'bullmq';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { checkDurability } from './queue/durability.js';
import { EventStore } from './queue/event-store.js';
import { deliveryJobOptions } from './queue/job-options.js';
import { type Keys, makeKeys } from './queue/keys.js';
import { TargetQueues } from './queue/queues.js';
import { createRedis, type RedisClient } from './queue/redis-connection.js';
import { RelayIdentity } from './queue/relay-id.js';
import { Router } from './relay/routing.js';

/** The shared pieces of a relay process, built once from the frozen config. */
export interface Runtime {
  config: Config;
  log: Logger;
  keys: Keys;
  redis: RedisClient;
  queues: TargetQueues;
  store: EventStore;
  router: Router;
  metrics: Metrics;
  relayId: RelayIdentity;
  close(): Promise<void>;
}

export async function createRuntime(
  config: Config,
  log: Logger,
  metrics: Metrics = createMetrics(),
): Promise<Runtime> {
  const keys = makeKeys(config);
  const redis = createRedis(config, 'producer');
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt; say it once per change.
    if (err.message !== lastError) log.warn({ err: err.message }, 'redis connection error');
    lastError = err.message;
  });
  const relayId = new RelayIdentity(redis, keys, config.relay.id);
  redis.on('ready', () => {
    if (lastError) log.info('redis connection ready again');
    relayId.get().then(
      (id) => log.debug({ relayId: id }, 'relay id'),
      (err: Error) => log.warn({ err: err.message }, 'relay id not read yet'),
    );
    lastError = '';
    // Check again on every (re)connection: after a restart or a Sentinel failover another server may answer.
    checkDurability(redis, config, log).then(
      (support) => {
        store.waitAof = support.waitAof;
        store.durabilityChecked = true;
      },
      (err: Error) => {
        store.durabilityChecked = false;
        log.error({ err: err.message }, 'redis cannot keep redis.durability: webhooks are answered 503');
      },
    );
  });
  const queues = new TargetQueues(config, keys, redis);
  const jobOptions = new Map<string, JobsOptions>(
    config.targets.map((t) => [t.id, deliveryJobOptions(config, t)]),
  );
  const commitRedis = createRedis(config, 'producer', 'producer-commit');
  commitRedis.on('error', () => {
    // Reported once by the main producer connection's handler above.
  });
  const store = new EventStore(redis, keys, config, queues, jobOptions, commitRedis);
  const router = new Router(config);
  return {
    config,
    log,
    keys,
    redis,
    queues,
    store,
    router,
    metrics,
    relayId,
    async close() {
      await queues.close();
      store.close();
      redis.disconnect();
      commitRedis.disconnect();
    },
  };
}

/** Resolves once Redis answers (the ingress may start before Redis and become ready later). */
export async function waitForRedis(redis: RedisClient, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (redis.status === 'ready') return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
