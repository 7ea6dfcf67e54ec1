import type { FastifyInstance } from 'fastify';
import { startDeliveryWorkers } from '../workers/delivery-worker.js';
import { buildIngressApp } from './app.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { buildWorkerMetricsApp } from './metrics-app.js';
import { checkDurability } from './queue/durability.js';
import { type EmbeddedRedis, startEmbeddedRedis } from './queue/embedded-redis.js';
import { startHousekeeping } from './queue/housekeeping.js';
import { checkShardCount } from './queue/shard-check.js';
import { createRuntime, waitForRedis } from './runtime.js';

export interface Roles {
  ingress: boolean;
  worker: boolean;
  /** The admin API, metrics and dashboard on `admin.port`. */
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
  const rt = await createRuntime(effective, log);
  try {
    if (await waitForRedis(rt.redis, 5000)) {
      // Refuse to start when Redis cannot keep the durability promise (DurabilityError stops the CLI), or
      // when the shard count differs from the one the data was written with.
      rt.store.waitAof = (await checkDurability(rt.redis, effective, log)).waitAof;
      rt.store.durabilityChecked = true;
      await checkShardCount(rt.redis, rt.keys);
    } else {
      log.warn('redis not reachable yet; /readyz answers 503 until it is');
    }
  } catch (err) {
    // Open connections would keep the process alive after the CLI printed why it refused to start.
    await rt.close();
    await embedded?.stop();
    throw err;
  }

  let app: FastifyInstance | undefined;
  let ingressUrl: string | undefined;
  if (roles.ingress) {
    app = buildIngressApp(rt);
    ingressUrl = await app.listen({ host: effective.ingress.host, port: effective.ingress.port });
    log.info({ url: ingressUrl }, 'ingress listening');
  }
  let admin: FastifyInstance | undefined;
  let adminUrl: string | undefined;
  if (roles.admin) {
    // Loaded on demand: the dashboard's dependencies would slow every CLI command that never serves it.
    const { buildAdminApp } = await import('./admin/admin-app.js');
    admin = await buildAdminApp(rt);
    adminUrl = await admin.listen({ host: effective.admin.host, port: effective.admin.port });
    log.info({ url: adminUrl }, 'admin listening');
  }
  const workers = roles.worker ? startDeliveryWorkers(rt) : undefined;
  if (workers) log.info({ targets: effective.targets.map((t) => t.id) }, 'delivery workers started');
  const housekeeping = roles.worker ? startHousekeeping(rt, log) : undefined;
  let metricsApp: FastifyInstance | undefined;
  let metricsUrl: string | undefined;
  if (roles.worker && !roles.admin && effective.worker.metricsPort !== undefined) {
    metricsApp = buildWorkerMetricsApp(rt);
    metricsUrl = await metricsApp.listen({
      host: effective.worker.metricsHost,
      port: effective.worker.metricsPort,
    });
    log.info({ url: metricsUrl }, 'worker metrics listening');
  }

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all([app?.close(), admin?.close()]);
      housekeeping?.stop();
      await workers?.close();
      await metricsApp?.close();
      await rt.close();
      await embedded?.stop();
    })();
    return stopping;
  };
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
