import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { embeddedRedisPassword, prepareDataFolder } from './data-folder.js';
import { lockDataFolder } from './data-folder-lock.js';
import { type EmbeddedRedis, requireEmbeddedTools, startEmbeddedRedis } from './embedded-redis.js';
import { stopLeftoverRedis } from './leftover-redis.js';

/**
 * How the last run on the data folder ended, as `hookrelay start` found it (the `previousRun` field of its
 * "embedded redis-server started" log line):
 * - `clean`: the lock was released and the redis-server shut down cleanly;
 * - `relay-died`: the last relay died holding the lock (SIGKILL, OOM killer); its redis-server followed it
 *   (the watchdog) or was found still running and shut down — see `leftover`;
 * - `redis-died`: the last redis-server was killed or crashed (its pid file was left behind);
 * - `both-died`: both of the above.
 */
export type PreviousRun = 'clean' | 'relay-died' | 'redis-died' | 'both-died';

export interface DataFolderRedis {
  redis: EmbeddedRedis;
  /** Resolves when the redis-server or the folder's lock is lost while running: the relay must stop. */
  lost: Promise<string>;
  stop(): Promise<void>;
}

/**
 * `hookrelay start` without redis.url: lock the data folder (one relay per folder, for this process's life),
 * shut down whatever redis-server an earlier run left on it, then start one redis-server with the folder's
 * password, on its Unix socket (and loopback TCP only when `redis.embeddedPort` asks for it).
 */
export async function startDataFolderRedis(
  opts: { dataDir: string; embeddedPort?: number },
  log: Logger,
): Promise<DataFolderRedis> {
  requireEmbeddedTools();
  const dir = resolve(opts.dataDir);
  // Only the folder itself before the lock: a start refused by it must leave a running relay's files alone.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = await lockDataFolder(dir);
  try {
    prepareDataFolder(dir);
    const password = embeddedRedisPassword(dir);
    const leftover = await stopLeftoverRedis(dir, password);
    const redisDied = leftover.kind === 'stale-pid-file';
    const relayDied = lock.previousHolder !== undefined || leftover.kind === 'stopped';
    const previousRun: PreviousRun = relayDied
      ? redisDied
        ? 'both-died'
        : 'relay-died'
      : redisDied
        ? 'redis-died'
        : 'clean';
    const redis = await startEmbeddedRedis({ dir, tcpPort: opts.embeddedPort ?? false, password });
    log.info(
      {
        previousRun,
        leftover: leftover.kind,
        ...('pid' in leftover && leftover.pid !== undefined ? { leftoverPid: leftover.pid } : {}),
        ...(lock.previousHolder ? { previousRelayPid: lock.previousHolder.pid } : {}),
        pid: redis.pid,
        ...(redis.socketUrl ? { socket: redis.socketUrl } : {}),
        ...(redis.url ? { tcp: redis.url } : {}),
        dir,
      },
      'embedded redis-server started',
    );
    let stopping = false;
    const lost = Promise.race([
      redis.exited.then((code) => `the embedded redis-server exited (status ${code})`),
      lock.lost.then(() => 'the data folder lock was lost (its flock process was killed)'),
    ]).then((why) => (stopping ? new Promise<string>(() => {}) : why));
    return {
      redis,
      lost,
      async stop() {
        stopping = true;
        await redis.stop();
        await lock.release();
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}
