import { Cluster } from 'ioredis';
import type { Config } from '../config/types.js';
import { DurabilityError } from '../errors/index.js';
import type { Logger } from '../log.js';
import type { RedisClient } from './redis-connection.js';

export interface DurabilitySupport {
  /** Redis ≥ 7.2: WAITAOF confirms the local fsync of each batch. */
  waitAof: boolean;
}

function field(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

async function configGet(redis: RedisClient, name: string): Promise<string | undefined> {
  try {
    const pair = (await redis.config('GET', name)) as string[];
    return pair[1];
  } catch {
    // Managed Redis often disables CONFIG: the caller decides whether not knowing is fatal.
    return undefined;
  }
}

/**
 * Check at start that the Redis server can keep the promise the configured durability makes, and refuse to
 * start when it cannot (a relay that says "stored" must mean it):
 * - fast: AOF written every second by Redis; survives a relay crash and a Redis restart, loses up to ~1 s of
 *   acknowledged events if the Redis host itself dies.
 * - fsync: every batch is on the Redis host's disk before the 202 (WAITAOF on Redis ≥ 7.2, otherwise the server
 *   must run `appendfsync always`).
 * - replicated: every batch reached `redis.replicas` replicas (WAIT) before the 202.
 */
export async function checkDurability(
  redis: RedisClient,
  config: Config,
  log: Logger,
): Promise<DurabilitySupport> {
  // On a cluster every primary holds some shards: each must keep the promise (WAITAOF only if all have it).
  if (redis instanceof Cluster) {
    const each = await Promise.all(redis.nodes('master').map((node) => checkDurability(node, config, log)));
    return { waitAof: each.length > 0 && each.every((s) => s.waitAof) };
  }
  const info = (await redis.info('server')) + (await redis.info('replication'));
  const [major = 0, minor = 0] = (field(info, 'redis_version') ?? '0.0').split('.').map(Number);
  const waitAof = major > 7 || (major === 7 && minor >= 2);
  const appendonly = await configGet(redis, 'appendonly');
  const policy = await configGet(redis, 'maxmemory-policy');
  if (policy && policy !== 'noeviction') {
    log.warn(
      { policy },
      'redis maxmemory-policy is not noeviction: Redis may evict queued events under memory pressure',
    );
  }
  const durability = config.redis.durability;
  if (durability === 'fast' && appendonly === 'no') {
    log.warn('redis has appendonly off: acknowledged events do not survive a Redis restart');
  }
  if (durability === 'fsync') {
    if (appendonly === 'no')
      throw new DurabilityError('redis.durability fsync needs appendonly yes on the Redis server');
    if (!waitAof) {
      const fsync = await configGet(redis, 'appendfsync');
      if (fsync !== 'always') {
        throw new DurabilityError(
          `redis.durability fsync needs Redis >= 7.2 (WAITAOF) or appendfsync always on the server (found ${fsync ?? 'unknown'})`,
        );
      }
    }
  }
  if (durability === 'replicated') {
    const replicas = Number(field(info, 'connected_slaves') ?? 0);
    if (replicas < config.redis.replicas) {
      log.warn(
        { connected: replicas, wanted: config.redis.replicas },
        'fewer replicas connected than redis.replicas: webhooks are answered 503 until they connect',
      );
    }
  }
  return { waitAof };
}
