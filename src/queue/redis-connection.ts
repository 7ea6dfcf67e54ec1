import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/types.js';

export type RedisClient = Redis | Cluster;

/**
 * Two kinds of connection, as BullMQ recommends for production. The ingress is a producer and must fail fast
 * (no offline queue, a command timeout) so that it answers 503 instead of hanging until Bitbucket's 10 s
 * timeout. Workers block on Redis and must retry forever (`maxRetriesPerRequest: null`).
 *
 * Auto-pipelining is off by default: ioredis builds a Pipeline object per flush, which cost the ingress's store
 * call more CPU than the fewer socket writes saved. `autoPipelining` turns it on for a connection that issues
 * several commands per tick and never blocks (the delivery's and the fan-out's own). Never on a cluster: an
 * auto-pipelined batch goes to a node, not a slot, and when one of its commands meets MOVED during a resharding
 * or failover ioredis rejects it instead of following the redirect (ioredis issue #2075).
 */
export function createRedis(
  config: Config,
  role: 'producer' | 'worker',
  name: string = role,
  opts: { autoPipelining?: boolean } = {},
): RedisClient {
  const r = config.redis;
  const common: RedisOptions = {
    ...connectionOptions(config, role, name),
    ...(opts.autoPipelining && !r.cluster ? { enableAutoPipelining: true } : {}),
  };
  if (r.cluster) {
    return new Cluster(r.cluster, {
      redisOptions: common,
      enableOfflineQueue: common.enableOfflineQueue ?? true,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    });
  }
  if (r.sentinels) {
    return new Redis({
      ...common,
      sentinels: r.sentinels,
      name: r.name!,
      ...(r.sentinelPassword ? { sentinelPassword: r.sentinelPassword } : {}),
      // The sentinels speak TLS too, and the primary they name is reached over TLS (common.tls).
      ...(common.tls ? { sentinelTLS: common.tls, enableTLSForSentinelMode: true } : {}),
      // After a failover the old primary may answer READONLY for a moment: reconnect to the new one.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
  }
  if (!r.url) throw new Error('redis.url is not set and no embedded Redis was started');
  const reconnectOnError = (err: Error) => err.message.startsWith('READONLY');
  const socket = unixSocketPath(r.url);
  if (socket) return new Redis({ ...common, path: socket, reconnectOnError });
  return new Redis(r.url, { ...common, reconnectOnError });
}

/**
 * `unix:///run/redis/redis.sock` → the socket's path. A Redis on the same host is cheaper to reach over its Unix
 * socket than over loopback TCP, for the relay and for Redis itself (docs/benchmarks.md).
 */
export function unixSocketPath(url: string): string | undefined {
  return url.startsWith('unix://') ? decodeURIComponent(new URL(url).pathname) : undefined;
}

/** The `unix://` URL of a socket path, each segment escaped (`#`, `?`, `%` and spaces are all valid in paths). */
export function unixSocketUrl(path: string): string {
  return `unix://${path.split('/').map(encodeURIComponent).join('/')}`;
}

export function isReady(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** Readiness as /readyz means it: the connection is up and Redis answers a PING now. */
export async function redisAnswers(client: RedisClient): Promise<boolean> {
  if (!isReady(client)) return false;
  return client.ping().then(
    () => true,
    () => false,
  );
}

/**
 * `redis.tls` as Node TLS options: the CA (absent: the system's), an optional client certificate, and the
 * name to verify (default: the host connected to). Read when a connection is made, so a renewed file is
 * picked up by the next connection.
 */
export function redisTlsOptions(config: Config): ConnectionOptions | undefined {
  const tls = config.redis.tls;
  if (!tls) return undefined;
  return {
    ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile) } : {}),
    ...(tls.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
  };
}

/** The options of one connection: fail fast for a producer, retry forever for a worker (see createRedis). */
export function connectionOptions(
  config: Config,
  role: 'producer' | 'worker',
  name: string = role,
): RedisOptions {
  const r = config.redis;
  const tls = redisTlsOptions(config);
  return {
    connectionName: `hookrelay-${name}`,
    // Every connection: a single server, the primary a sentinel names, each cluster node (also the direct
    // per-node connections of ClusterNodes).
    ...(tls ? { tls } : {}),
    lazyConnect: false,
    ...(r.password ? { password: r.password } : {}),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...(role === 'producer'
      ? {
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: r.commandTimeout,
        }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true }),
  };
}
