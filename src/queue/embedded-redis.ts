import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { unixSocketUrl } from './redis-connection.js';

export interface EmbeddedRedis {
  /** `redis://` URL over loopback TCP; absent when it listens on its Unix socket alone. */
  url?: string;
  /**
   * `unix://` URL of its socket in `dir`; absent when the path is too long for one or the folder cannot hold one
   * (it then listens on loopback TCP).
   */
  socketUrl?: string;
  /** The loopback TCP port, when it listens on one. */
  port?: number;
  /** `requirepass`, when it has one. */
  password?: string;
  dir: string;
  /** The redis-server's own pid (its pid file). */
  pid: number;
  /** The watchdog wrapper the redis-server runs under (see WATCHDOG). */
  process: ChildProcess;
  /** Resolves when the redis-server has exited, for whatever reason; its exit status. */
  exited: Promise<number | null>;
  stop(graceMs?: number): Promise<void>;
}

/** One that listens on loopback TCP (tests, benchmarks, and an embedded Redis with a port configured). */
export type LoopbackRedis = EmbeddedRedis & { url: string; port: number };

/** A tool the embedded Redis needs is missing; the message says which and how to get it, or to set redis.url. */
export class RedisServerMissing extends Error {
  constructor(
    what = 'redis-server is not on PATH. Install it (Debian/Ubuntu: `sudo apt-get install -y redis-server`, macOS: ' +
      '`brew install redis`)',
  ) {
    super(`${what} Or set redis.url in the config to an existing Redis 6.2+.`);
  }
}

/** An executable's path on PATH, looked up here rather than through a shell, which may itself be missing. */
export function findOnPath(name: string, path: string = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

export function findRedisServer(): string | null {
  return findOnPath('redis-server');
}

/**
 * What `hookrelay start` needs on PATH for its own Redis, checked before anything is touched, each missing one
 * named: redis-server, `sh` (the watchdog that stops it with the relay) and `flock` (the data folder's lock).
 */
export function requireEmbeddedTools(): void {
  if (!findRedisServer()) throw new RedisServerMissing();
  for (const [tool, why] of [
    ['sh', 'the embedded redis-server runs under a small sh watchdog that stops it with the relay'],
    ['flock', 'the embedded Redis locks its data folder with it (util-linux)'],
  ] as const) {
    if (!findOnPath(tool)) throw new RedisServerMissing(`${tool} is not on PATH: ${why}.`);
  }
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

async function waitForPing(at: RedisOptions, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new RedisExited(child.exitCode);
    if (await answersPing(at)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('redis-server did not answer PING in time');
}

/**
 * How the relay runs a redis-server of its own: loopback only (or no TCP at all: port 0), AOF on (acknowledged
 * events survive a restart), no RDB snapshots, `noeviction` (BullMQ must never lose keys to eviction), and
 * hashes with values up to REDIS_HASH_LISTPACK_VALUE kept compact (see there).
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
    // The name Redis 6 knows too; Redis 7 and later take it as an alias of hash-max-listpack-value.
    '--hash-max-ziplist-value',
    String(REDIS_HASH_LISTPACK_VALUE),
  ];
}

/**
 * `hash-max-listpack-value` for a Redis the relay uses: every event and delivery job is a hash of about a dozen
 * fields, several longer than Redis's default of 64 bytes (the compressed body, the envelope, job data), and one
 * such field makes Redis keep the whole hash as a hash table with a per-field overhead. As a listpack the same
 * hash is about a seventh smaller (measured with the burst bench); a read or write of one is a scan of a dozen
 * entries. docs/deploy.md asks the same of an external Redis.
 */
export const REDIS_HASH_LISTPACK_VALUE = 8192;

/**
 * The wrapper every embedded redis-server runs under (`sh -c WATCHDOG sh redis-server ARGS…`), so that it never
 * outlives the process that started it, however that process dies:
 * - fd 3 is a pipe whose write end only the starting process holds. The kernel closes it when that process
 *   exits for any reason (SIGKILL and the OOM killer included), so a watcher blocked reading it gets EOF and
 *   sends the redis-server SIGTERM: a graceful shutdown that flushes and fsyncs the AOF. Closing the pipe is also
 *   how a clean stop asks for that shutdown. Unlike `setpriv --pdeathsig` this has no window between fork and
 *   arming (an EOF on an already closed pipe is immediate), does not depend on which thread forked, and needs
 *   nothing beyond POSIX sh.
 * - fd 0 carries the redis-server's config from stdin (`-`): the `requirepass`, which must not appear in its
 *   argv (any local user can read /proc/<pid>/cmdline).
 * - umask 077: the AOF files, the pid file and the socket are readable by this user only.
 * - The wrapper exits with the redis-server's status when it exits on its own (or is killed).
 * Background jobs of a non-interactive shell get /dev/null as stdin, hence the explicit fd copies.
 */
const WATCHDOG = [
  'umask 077',
  'exec 4<&0',
  '"$@" <&4 4<&- 3<&- &',
  'server=$!',
  'exec 4<&-',
  '{ read -r _ <&3; kill -TERM "$server" 2>/dev/null; } &',
  'watcher=$!',
  'exec 3<&-',
  'wait "$server"',
  'status=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$status"',
].join('\n');

export interface EmbeddedRedisOptions {
  dir: string;
  /**
   * Loopback TCP: a port, `undefined` for a free one (tests and benchmarks), or `false` for none — then it
   * listens on its Unix socket alone, and on a free loopback port only where the folder cannot hold a socket.
   */
  tcpPort?: number | false;
  /** `requirepass` (passed on stdin, never in argv). */
  password?: string;
  args?: string[];
  appendfsync?: 'everysec' | 'always';
}

export const REDIS_PID_FILE = 'redis.pid';
export const REDIS_SOCKET_FILE = 'redis.sock';

/**
 * A redis-server child with AOF on (so `hookrelay start` keeps acknowledged events across restarts) and
 * `noeviction` (BullMQ must never lose keys to eviction), run under WATCHDOG. Used by `hookrelay start` when
 * no redis.url is configured (see embedded-start.ts for the data folder around it), and by the tests and
 * benchmarks.
 */
export async function startEmbeddedRedis(
  opts: EmbeddedRedisOptions & { tcpPort?: number },
): Promise<LoopbackRedis>;
export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis>;
export async function startEmbeddedRedis(opts: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const bin = findRedisServer();
  if (!bin) throw new RedisServerMissing();
  if (!findOnPath('sh')) {
    throw new Error(
      'sh is not on PATH: the embedded redis-server runs under a small sh watchdog (see docs/reliability.md)',
    );
  }
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pidFile = join(dir, REDIS_PID_FILE);
  const auth = opts.password ? { password: opts.password } : {};
  const run = async (port: number, extra: string[], probe: RedisOptions) => {
    const proc = spawn(
      'sh',
      [
        '-c',
        WATCHDOG,
        'sh',
        bin,
        '-',
        ...redisServerArgs(port, dir, opts.appendfsync ?? 'everysec'),
        '--pidfile',
        pidFile,
        '--daemonize',
        'no',
        ...extra,
        ...(opts.args ?? []),
      ],
      // Its own process group: a Ctrl-C on the terminal reaches the relay, which stops its Redis last, after
      // the workers have finished with it, rather than every process of the group at once.
      { cwd: dir, detached: true, stdio: ['pipe', 'ignore', 'pipe', 'pipe'] },
    );
    proc.stdin?.end(opts.password ? `requirepass "${opts.password}"\n` : '');
    try {
      await waitForPing({ ...probe, ...auth }, proc, 10_000);
    } catch (err) {
      killGroup(proc, 'SIGKILL');
      throw err;
    }
    return proc;
  };
  // The relay on the same host talks to it over a Unix socket, readable by this user only: cheaper than
  // loopback TCP for every command (see redis-connection.ts). A socket path must fit in sun_path (108 bytes),
  // and some filesystems (network shares, some container bind mounts) cannot hold one: Redis then exits at
  // once, and it runs on loopback TCP alone.
  const socket = join(dir, REDIS_SOCKET_FILE);
  const wantedPort = opts.tcpPort === false ? 0 : (opts.tcpPort ?? (await freePort()));
  let child: ChildProcess | undefined;
  let socketUrl: string | undefined;
  let port = wantedPort;
  if (Buffer.byteLength(socket) < 100) {
    try {
      child = await run(port, ['--unixsocket', socket, '--unixsocketperm', '700'], { path: socket });
      socketUrl = unixSocketUrl(socket);
    } catch (err) {
      if (!(err instanceof RedisExited)) throw err;
    }
  }
  if (!child) {
    port = wantedPort || (await freePort());
    child = await run(port, [], { host: '127.0.0.1', port });
  }
  const server = child;
  const exited = new Promise<number | null>((res) => server.once('exit', (code) => res(code)));
  // A relay that exits without stopping it (process.exit on a shutdown timeout) closes the watchdog's pipe
  // anyway; this only makes that explicit.
  const onExit = () => server.stdio[3]?.destroy();
  process.once('exit', onExit);
  void exited.then(() => process.off('exit', onExit));
  return {
    ...(port ? { url: `redis://127.0.0.1:${port}`, port } : {}),
    ...(socketUrl ? { socketUrl } : {}),
    ...auth,
    dir,
    pid: Number(readFileSync(pidFile, 'utf8').trim()),
    process: server,
    exited,
    // Closing the watchdog's pipe asks for a graceful shutdown (the AOF is flushed and fsynced); a Redis 7
    // primary may then wait up to 10 s for lagging replicas, so after a bound the whole group is killed (the
    // AOF was already flushed by then).
    stop: (graceMs = 5000) =>
      new Promise<void>((res) => {
        if (server.exitCode !== null || server.signalCode !== null) return res();
        const timer = setTimeout(() => killGroup(server, 'SIGKILL'), graceMs);
        server.once('exit', () => {
          clearTimeout(timer);
          res();
        });
        server.stdio[3]?.destroy();
      }),
  };
}

/** The wrapper, its redis-server and its watcher: one process group (detached). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
