import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { unixSocketUrl } from './redis-connection.js';

export interface EmbeddedRedis {
  /** Over loopback TCP, for tools and tests. */
  url: string;
  /**
   * `unix://` URL of its socket in `dir`, the relay's own way in; absent when the path is too long for one or
   * the folder cannot hold one.
   */
  socketUrl?: string;
  port: number;
  dir: string;
  process: ChildProcess;
  stop(graceMs?: number): Promise<void>;
}

export class RedisServerMissing extends Error {
  constructor() {
    super(
      'redis-server is not on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: ' +
        '`brew install redis`) or set redis.url in the config to an existing Redis 6.2+.',
    );
  }
}

export function findRedisServer(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : null;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

/** The redis-server exited before it answered (a bad argument, a port or socket it could not bind). */
class RedisExited extends Error {
  constructor(code: number) {
    super(`redis-server exited with code ${code}`);
  }
}

/** Whether a Redis answers PING right now (one try, no reconnects): a URL, or options such as `{ path }`. */
export async function answersPing(at: string | RedisOptions): Promise<boolean> {
  const once: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null };
  const probe = typeof at === 'string' ? new Redis(at, once) : new Redis({ ...at, ...once });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function waitForPing(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new RedisExited(child.exitCode);
    if (await answersPing(url)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not answer PING in time');
}

/**
 * How the relay runs a redis-server of its own: loopback only, AOF on (acknowledged events survive a restart),
 * no RDB snapshots, and `noeviction` (BullMQ must never lose keys to eviction).
 */
export function redisServerArgs(
  port: number,
  dir: string,
  appendfsync: 'everysec' | 'always' = 'everysec',
): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    appendfsync,
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--protected-mode',
    'yes',
  ];
}

/**
 * A redis-server child on a free loopback port, with AOF on (so `hookrelay start` keeps acknowledged events
 * across restarts) and `noeviction` (BullMQ must never lose keys to eviction). Used by `hookrelay start` when
 * no redis.url is configured, and by the test suite.
 */
export async function startEmbeddedRedis(
  opts: { dir: string; port?: number; args?: string[]; appendfsync?: 'everysec' | 'always' } = {
    dir: '.hookrelay-data',
  },
): Promise<EmbeddedRedis> {
  const bin = findRedisServer();
  if (!bin) throw new RedisServerMissing();
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const url = `redis://127.0.0.1:${port}`;
  const run = async (extra: string[]) => {
    const proc = spawn(
      bin,
      [...redisServerArgs(port, dir, opts.appendfsync ?? 'everysec'), ...extra, ...(opts.args ?? [])],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      await waitForPing(url, proc, 10_000);
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    return proc;
  };
  // The relay on the same host talks to it over a Unix socket, readable by this user only: cheaper than
  // loopback TCP for every command (see redis-connection.ts). A socket path must fit in sun_path (108 bytes),
  // and some filesystems (network shares, some container bind mounts) cannot hold one: Redis then exits at
  // once, and it runs on loopback TCP alone.
  const socket = join(dir, 'redis.sock');
  let child: ChildProcess | undefined;
  let socketUrl: string | undefined;
  if (Buffer.byteLength(socket) < 100) {
    try {
      child = await run(['--unixsocket', socket, '--unixsocketperm', '700']);
      socketUrl = unixSocketUrl(socket);
    } catch (err) {
      if (!(err instanceof RedisExited)) throw err;
    }
  }
  child ??= await run([]);
  // A relay that exits without stopping it (process.exit on a shutdown timeout) must not leave it running.
  const onExit = () => child.kill('SIGTERM');
  process.once('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  return {
    url,
    ...(socketUrl ? { socketUrl } : {}),
    port,
    dir,
    process: child,
    // SIGTERM lets Redis fsync its AOF; a Redis 7 primary may then wait up to 10 s for lagging replicas, so
    // after a bound it is killed (the AOF was already flushed by then).
    stop: (graceMs = 5000) =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(timer);
          res();
        });
        child.kill('SIGTERM');
      }),
  };
}
