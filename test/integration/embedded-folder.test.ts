import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedRedisPassword, prepareDataFolder } from '../../src/queue/data-folder.js';
import { answersPing, freePort, redisServerArgs } from '../../src/queue/embedded-redis.js';
import { waitFor } from '../edge/helpers/processes.js';
import { runCli, startCliServer } from '../helpers/cli.js';
import { SECRETS } from '../helpers/config.js';
import { redisServersOn } from '../helpers/redis-on-folder.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

// The data folder of `hookrelay start` without redis.url: one relay per folder, and only the user it runs as
// can reach the Redis in it (the local-user attack: writing an admin session key into an open Redis).

type Relay = Awaited<ReturnType<typeof startCliServer>>;

let dir: string;
let target: TargetServer;
let relay: Relay | undefined;
let data: string;
let config: string;

function writeConfig(name: string, dataDir: string, redisExtra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `
redis: { dataDir: "${dataDir}"${redisExtra} }
ingress: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "${target.url}/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
  );
  return file;
}

async function ping(options: RedisOptions): Promise<string> {
  const client = new Redis({
    ...options,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.ping();
  } catch (err) {
    return (err as Error).message;
  } finally {
    client.disconnect();
  }
}

/** redis-cli PING without a password: what a local user who found the socket or port would try. */
function pingWithoutPassword(...where: string[]): string {
  const cli = spawnSync('redis-cli', [...where, 'PING'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  return `${cli.stdout}${cli.stderr}`.trim();
}

async function configGet(options: RedisOptions, key: string): Promise<string> {
  const client = new Redis(options);
  try {
    return ((await client.config('GET', key)) as string[])[1]!;
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-folder-'));
  target = await startTargetServer();
  data = join(dir, 'data');
  config = writeConfig('main', data);
  relay = await startCliServer(['start', '--config', config], 'ingress listening', {}, 90_000);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await target?.close();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

// Each case starts `hookrelay start` (and a redis-server) once or twice: slow on a loaded 2-core machine.
describe('the embedded Redis data folder', { timeout: 150_000 }, () => {
  it('a second start on the same folder exits 1 naming the running relay; the first stays ready', async () => {
    const second = await runCli(['start', '--config', config], {}, 90_000);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`${data} is in use by hookrelay pid ${relay!.child.pid}`);
    // Nothing of the first was touched: its socket is there, it is ready, one redis-server serves the folder.
    const password = embeddedRedisPassword(data);
    expect(await ping({ path: join(data, 'redis.sock'), password })).toBe('PONG');
    const ready = await fetch(`${relay!.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(redisServersOn(data)).toHaveLength(1);
  });

  it('is this user’s only: folder 0700, password file 0600, AOF files not readable by others, NOAUTH without it', async () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    expect(mode(data)).toBe(0o700);
    expect(mode(join(data, 'redis.password'))).toBe(0o600);
    const aofDir = join(data, 'appendonlydir');
    expect(mode(aofDir) & 0o077).toBe(0);
    const aofFiles = readdirSync(aofDir);
    expect(aofFiles.length).toBeGreaterThan(0);
    for (const name of aofFiles) expect(mode(join(aofDir, name)) & 0o077).toBe(0);
    expect(pingWithoutPassword('-s', join(data, 'redis.sock'))).toMatch(/^NOAUTH/);
    // Not in any process's argv, which every local user can read.
    const everyArgv = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        } catch {
          return ''; // exited meanwhile
        }
      })
      .join('\n');
    expect(everyArgv).toContain('redis-server');
    expect(everyArgv).not.toContain(embeddedRedisPassword(data));
  });

  it.skipIf(process.getuid?.() !== 0)('another local user can neither connect nor read the password', () => {
    const asNobody = (...cmd: string[]) =>
      spawnSync('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', ...cmd], {
        encoding: 'utf8',
      });
    const cli = asNobody('redis-cli', '-s', join(data, 'redis.sock'), 'PING');
    expect(`${cli.stdout}${cli.stderr}`).toContain('Permission denied');
    const cat = asNobody('cat', join(data, 'redis.password'));
    expect(cat.status).not.toBe(0);
    expect(cat.stderr).toContain('Permission denied');
  });

  it('has no TCP port unless redis.embeddedPort is set; then on loopback, with the password', async () => {
    const password = embeddedRedisPassword(data);
    expect(await configGet({ path: join(data, 'redis.sock'), password }, 'port')).toBe('0');

    const port = await freePort();
    const tcpData = join(dir, 'tcp-data');
    const tcp = await startCliServer(
      ['start', '--config', writeConfig('tcp', tcpData, `, embeddedPort: ${port}`)],
      'ingress listening',
      {},
      90_000,
    );
    try {
      const tcpPassword = embeddedRedisPassword(tcpData);
      expect(pingWithoutPassword('-h', '127.0.0.1', '-p', String(port))).toMatch(/^NOAUTH/);
      expect(await ping({ host: '127.0.0.1', port, password: tcpPassword })).toBe('PONG');
      expect(await configGet({ host: '127.0.0.1', port, password: tcpPassword }, 'bind')).toBe('127.0.0.1');
    } finally {
      await tcp.stop();
    }
    expect(tcp.child.exitCode).toBe(0);
  });

  it('shuts down a redis-server an earlier run left on the folder, keeping its data, and narrows its files', async () => {
    // What a relay whose watchdog did not act leaves behind: a redis-server with the folder's password, socket
    // and pid file, and no relay.
    const folder = prepareDataFolder(join(dir, 'leftover-data'));
    const password = embeddedRedisPassword(folder);
    const socket = join(folder, 'redis.sock');
    const orphan = spawn(
      'redis-server',
      ['-', ...redisServerArgs(0, folder), '--unixsocket', socket, '--pidfile', join(folder, 'redis.pid')],
      { cwd: folder, detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
    );
    orphan.stdin.end(`requirepass "${password}"\n`);
    const orphanExited = new Promise((res) => orphan.once('exit', res));
    try {
      await waitFor('the leftover redis-server', () => answersPing({ path: socket, password }), 15_000, 50);
      const writer = new Redis({ path: socket, password });
      await writer.set('written-before', 'by the earlier run');
      writer.disconnect();

      // As an older relay left it: folder 0755, AOF files as its redis-server's umask (022) made them.
      chmodSync(folder, 0o755);
      const aofDir = join(folder, 'appendonlydir');
      const openToOthers = () =>
        [folder, aofDir, ...readdirSync(aofDir).map((name) => join(aofDir, name))].filter(
          (path) => (statSync(path).mode & 0o077) !== 0,
        );
      expect(openToOthers().length).toBeGreaterThan(1);

      const cfg = writeConfig('leftover', folder);
      const next = await startCliServer(['start', '--config', cfg], 'ingress listening', {}, 90_000);
      try {
        await orphanExited;
        const started = next
          .output()
          .split('\n')
          .filter((line) => line.includes('"embedded redis-server started"'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(started).toHaveLength(1);
        expect(started[0]).toMatchObject({
          previousRun: 'relay-died',
          leftover: 'stopped',
          leftoverPid: orphan.pid,
        });
        const servers = redisServersOn(folder);
        expect(servers).toEqual([started[0]!.pid]);
        expect(openToOthers()).toEqual([]);
        const reader = new Redis({ path: socket, password });
        try {
          expect(await reader.get('written-before')).toBe('by the earlier run');
        } finally {
          reader.disconnect();
        }
      } finally {
        await next.stop();
      }
    } finally {
      if (orphan.exitCode === null) orphan.kill('SIGKILL');
    }
  });
});
