import type { FastifyInstance } from 'fastify';
import { type DeliveryWorkers, startDeliveryWorkers } from '../workers/delivery-worker.js';
import { buildIngressApp } from './app.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { buildWorkerMetricsApp } from './metrics-app.js';
import { checkDurability } from './queue/durability.js';
import { type EmbeddedRedis, startEmbeddedRedis } from './queue/embedded-redis.js';
import { startHousekeeping } from './queue/housekeeping.js';
import { checkShardCount } from './queue/shard-check.js';
import { createRuntime, type Runtime, waitForRedis } from './runtime.js';

export interface Roles {
  ingress: boolean;
  worker: boolean;
  /** The admin API, metrics and ops console on `admin.port`. */
  admin?: boolean;
}

export interface RunningRelay {
  ingressUrl?: string;
  adminUrl?: string;
  /** A worker-only process's /metrics (`worker.metricsPort`). */
  metricsUrl?: string;
  redisUrl: string;
  stop(): Promise<void>;
}

/**
 * Process start: builds the runtime, starts the roles asked for, and stops them in the right order — stop
 * taking webhooks, let in-flight deliveries finish, close Redis, then stop an embedded Redis.
 */
export async function runRelay(config: Config, roles: Roles, log: Logger): Promise<RunningRelay> {
  let embedded: EmbeddedRedis | undefined;
  let effective = config;
  if (!config.redis.url && !config.redis.sentinels && !config.redis.cluster) {
    embedded = await startEmbeddedRedis({ dir: config.redis.dataDir });
    const url = embedded.socketUrl ?? embedded.url;
    log.info({ url, tcp: embedded.url, dir: embedded.dir }, 'embedded redis-server started (AOF on)');
    effective = Object.freeze({ ...config, redis: Object.freeze({ ...config.redis, url }) });
  }
  let rt: Runtime | undefined;
  let app: FastifyInstance | undefined;
  let admin: FastifyInstance | undefined;
  let metricsApp: FastifyInstance | undefined;
  let workers: DeliveryWorkers | undefined;
  let housekeeping: ReturnType<typeof startHousekeeping> | undefined;
  let ingressUrl: string | undefined;
  let adminUrl: string | undefined;
  let metricsUrl: string | undefined;
  let stopping: Promise<void> | undefined;
  // Whatever has started, stopped in order. A failed start runs it too: open connections, listeners and the
  // embedded redis-server must not outlive a start the CLI reports as failed.
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all([app?.close(), admin?.close()]);
      housekeeping?.stop();
      await workers?.close();
      await metricsApp?.close();
      await rt?.close();
      await embedded?.stop();
    })();
    return stopping;
  };
  try {
    const runtime = await createRuntime(effective, log);
    rt = runtime;
    if (await waitForRedis(runtime.redis, 5000)) {
      // Refuse to start when Redis cannot keep the durability promise (DurabilityError stops the CLI), or
      // when the shard count differs from the one the data was written with.
      runtime.store.waitAof = (await checkDurability(runtime.redis, effective, log)).waitAof;
      runtime.store.durabilityChecked = true;
      await checkShardCount(runtime.redis, runtime.keys);
    } else {
      log.warn('redis not reachable yet; /readyz answers 503 until it is');
    }
    if (roles.ingress) {
      app = buildIngressApp(runtime);
      ingressUrl = await app.listen({ host: effective.ingress.host, port: effective.ingress.port });
      log.info({ url: ingressUrl }, 'ingress listening');
    }
    if (roles.admin) {
      // Loaded on demand: the console's dependencies would slow every CLI command that never serves it.
      const { buildAdminApp } = await import('./admin/admin-app.js');
      admin = await buildAdminApp(runtime);
      adminUrl = await admin.listen({ host: effective.admin.host, port: effective.admin.port });
      log.info({ url: adminUrl }, 'admin listening');
    }
    workers = roles.worker ? startDeliveryWorkers(runtime) : undefined;
    if (workers) log.info({ targets: effective.targets.map((t) => t.id) }, 'delivery workers started');
    housekeeping = roles.worker ? startHousekeeping(runtime, log) : undefined;
    if (roles.worker && !roles.admin && effective.worker.metricsPort !== undefined) {
      metricsApp = buildWorkerMetricsApp(runtime);
      metricsUrl = await metricsApp.listen({
        host: effective.worker.metricsHost,
        port: effective.worker.metricsPort,
      });
      log.info({ url: metricsUrl }, 'worker metrics listening');
    }
  } catch (err) {
    await stop().catch((stopErr: Error) => log.warn({ err: stopErr.message }, 'stopping a failed start'));
    throw err;
  }
  return {
    ...(ingressUrl ? { ingressUrl } : {}),
    ...(adminUrl ? { adminUrl } : {}),
    ...(metricsUrl ? { metricsUrl } : {}),
    redisUrl: effective.redis.url ?? '',
    stop,
  };
}

/**
 * SIGTERM/SIGINT: stop gracefully within a bound, then exit. A signal that arrives while the relay is still
 * starting stops it as soon as it has started; a start that fails has cleaned up after itself.
 */
export function exitOnSignals(starting: Promise<RunningRelay>, log: Logger, graceMs: number): void {
  const handler = (signal: string) => {
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown took too long, exiting');
      process.exit(1);
    }, graceMs);
    timer.unref();
    starting
      .then((relay) => relay.stop())
      .then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}
