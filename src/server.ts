import type { FastifyInstance } from 'fastify';
import { buildIngressApp } from './app.js';
import type { Config } from './config/types.js';
import { type DeliveryWorkers, startDeliveryWorkers } from './delivery/workers.js';
import { type FanOut, startFanOut } from './fanout/fan-out.js';
import { listenAt } from './listen.js';
import type { Logger } from './log.js';
import { buildWorkerMetricsApp } from './metrics-app.js';
import { checkDurability } from './queue/durability.js';
import { type DataFolderRedis, startDataFolderRedis } from './queue/embedded-start.js';
import { startHousekeeping } from './queue/housekeeping.js';
import { checkShardCount } from './queue/shard-check.js';
import { createRuntime, type Runtime, waitForRedis } from './runtime.js';
import { startTracing, stopTracing } from './tracing/tracing.js';

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
  /**
   * Resolves when the embedded redis-server (or the data folder's lock) is gone while the relay runs: it cannot
   * keep a promise without it, and staying up would hold the folder against the start that can.
   */
  lost?: Promise<string>;
}

/**
 * Process start: builds the runtime, starts the roles asked for, and stops them in the right order — stop
 * taking webhooks, let in-flight deliveries finish, close Redis, then stop an embedded Redis.
 */
export async function runRelay(config: Config, roles: Roles, log: Logger): Promise<RunningRelay> {
  let embedded: DataFolderRedis | undefined;
  let effective = config;
  if (!config.redis.url && !config.redis.sentinels && !config.redis.cluster) {
    embedded = await startDataFolderRedis(config.redis, log);
    const { socketUrl, url, password } = embedded.redis;
    effective = Object.freeze({
      ...config,
      redis: Object.freeze({ ...config.redis, url: socketUrl ?? url, password }),
    });
  }
  const role =
    roles.ingress && roles.worker ? 'start' : roles.ingress ? 'ingress' : roles.worker ? 'worker' : 'admin';
  const tracing = startTracing(role);
  if (tracing) log.info('tracing on: spans go to the OTLP endpoint in OTEL_EXPORTER_OTLP_*');
  let relayRuntime: Runtime | undefined;
  let app: FastifyInstance | undefined;
  let admin: FastifyInstance | undefined;
  let metricsApp: FastifyInstance | undefined;
  let workers: DeliveryWorkers | undefined;
  let fanOut: FanOut | undefined;
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
      // Both at once: an event the fan-out read and has not decided stays pending (claimed on restart); the
      // delivery workers close as soon as they did before the fan-out existed (BullMQ's own start-up races
      // with a close that comes later).
      await Promise.all([fanOut?.close(), workers?.close()]);
      await metricsApp?.close();
      await relayRuntime?.close();
      await embedded?.stop();
      // Last: the spans of the final requests and deliveries are flushed before the process exits.
      if (tracing) await stopTracing();
    })();
    return stopping;
  };
  try {
    const runtime = await createRuntime(effective, log);
    relayRuntime = runtime;
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
      ingressUrl = await listenAt(app, effective.ingress, 'ingress');
      log.info({ url: ingressUrl }, 'ingress listening');
    }
    if (roles.admin) {
      // Loaded on demand: the console's dependencies would slow every CLI command that never serves it.
      const { buildAdminApp } = await import('./admin/admin-app.js');
      admin = await buildAdminApp(runtime);
      adminUrl = await listenAt(admin, effective.admin, 'admin');
      log.info({ url: adminUrl }, 'admin listening');
    }
    // The worker role routes what the ingress received (the fan-out) and delivers it.
    fanOut = roles.worker ? startFanOut(runtime) : undefined;
    workers = roles.worker ? startDeliveryWorkers(runtime) : undefined;
    if (fanOut) log.info({ shards: runtime.keys.shards }, 'fan-out started');
    if (workers) log.info({ targets: effective.targets.map((t) => t.id) }, 'delivery workers started');
    housekeeping = roles.worker ? startHousekeeping(runtime, log) : undefined;
    if (roles.worker && !roles.admin && effective.worker.metricsPort !== undefined) {
      metricsApp = buildWorkerMetricsApp(runtime);
      metricsUrl = await listenAt(
        metricsApp,
        { host: effective.worker.metricsHost, port: effective.worker.metricsPort },
        'worker',
        'metricsPort',
        'metricsHost',
      );
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
    ...(embedded ? { lost: embedded.lost } : {}),
  };
}

/**
 * SIGTERM/SIGINT: stop gracefully within a bound, then exit. A signal that arrives while the relay is still
 * starting stops it as soon as it has started; a start that fails has cleaned up after itself. Losing the
 * embedded redis-server stops the relay the same way, exiting 1 so a supervisor starts it again (on a clean
 * folder: see embedded-start.ts).
 */
const LOST_REDIS_GRACE_MS = 3000;

export function exitOnSignals(starting: Promise<RunningRelay>, log: Logger, graceMs: number): void {
  let exitCode = 0;
  const shutDown = (boundMs: number) => {
    const timer = setTimeout(() => {
      log.error('shutdown took too long, exiting');
      process.exit(1);
    }, boundMs);
    timer.unref();
    starting
      .then((relay) => relay.stop())
      .then(
        () => process.exit(exitCode),
        (err) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  const handler = (signal: string) => {
    log.info({ signal }, 'shutting down');
    shutDown(graceMs);
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  starting.then(
    (relay) =>
      relay.lost?.then((reason) => {
        log.error({ reason }, 'embedded redis lost, shutting down');
        exitCode = 1;
        // Without Redis no delivery can be marked done, so waiting for them would only hold the folder longer.
        shutDown(Math.min(graceMs, LOST_REDIS_GRACE_MS));
      }),
    () => undefined,
  );
}
