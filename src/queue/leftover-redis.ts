import { readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { answersPing, REDIS_PID_FILE, REDIS_SOCKET_FILE } from './embedded-redis.js';

/**
 * What an earlier run left on the data folder, found with the folder's lock held (so no live relay owns it):
 * - `none`: no redis-server pid file (the last one shut down cleanly: Redis removes its pid file then);
 * - `stale-pid-file`: a pid file whose redis-server is gone — it was killed or crashed, without a clean
 *   shutdown (Redis replays the AOF, and repairs a torn last command, on the next start);
 * - `stopped`: a redis-server still serving the folder (its relay died and it did not follow, or it was still
 *   shutting down); it was shut down cleanly before a new one starts.
 */
export type Leftover =
  | { kind: 'none' }
  | { kind: 'stale-pid-file'; pid: number }
  | { kind: 'stopped'; pid?: number };

/** Whether `pid` is a live redis-server whose working directory is `dir` (it chdirs to its `--dir`). */
export function isRedisServerOn(pid: number, dir: string): boolean {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return comm === 'redis-server' && readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dir);
  } catch {
    return false;
  }
}

function pidFromFile(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, REDIS_PID_FILE), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds a redis-server an earlier run left on the folder — by its pid file checked against the process table,
 * or by its socket answering with the folder's password — and shuts it down: `SHUTDOWN` over the socket (Redis
 * flushes and fsyncs the AOF first), or SIGTERM (the same shutdown) where the socket is gone. Never adopted:
 * an adopted redis-server has no watchdog tying it to the new relay (embedded-redis.ts), and the next crash
 * would leave it behind again. Two redis-servers must never share the folder (both would append to one AOF),
 * so a leftover that does not exit in time is an error, not something to start beside.
 */
export async function stopLeftoverRedis(
  dir: string,
  password: string,
  timeoutMs = 60_000,
): Promise<Leftover> {
  const pid = pidFromFile(dir);
  const alive = pid !== undefined && isRedisServerOn(pid, dir);
  const socket = join(dir, REDIS_SOCKET_FILE);
  const answering = await answersPing({ path: socket, password });
  if (!alive && !answering) return pid === undefined ? { kind: 'none' } : { kind: 'stale-pid-file', pid };
  if (answering) {
    const client = new Redis({
      path: socket,
      password,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    // The connection closes as the server exits: no answer comes back.
    await client.call('SHUTDOWN').catch(() => undefined);
    client.disconnect();
  } else if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // It exited between the check and the signal: what the wait below looks for.
    }
  }
  const deadline = Date.now() + timeoutMs;
  while ((alive && isRedisServerOn(pid!, dir)) || (await answersPing({ path: socket, password }))) {
    if (Date.now() > deadline)
      throw new Error(
        `an earlier redis-server${alive ? ` (pid ${pid})` : ''} still serves ${dir} and did not shut down: stop it, then start again`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
  return { kind: 'stopped', ...(alive ? { pid } : {}) };
}
