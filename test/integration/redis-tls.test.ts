/**
 * Redis over TLS with a private CA and client certificates: a real redis-server started with --tls-port only
 * (no plain port) and a real redis-sentinel over TLS in front of it; certificates made with openssl here.
 * The relay reaches it through redis.tls, both with a plain host URL and through the sentinel.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/index.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { SECRETS } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { routed } from '../helpers/routed.js';

let dir: string;
const children: ChildProcess[] = [];
let redisPort: number;
let sentinelPort: number;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
    server.on('error', reject);
  });
}

/** A CA, and a server and a client certificate it signed (the server's for 127.0.0.1 and localhost). */
function makeCertificates(at: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: at, stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=hookrelay test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
  );
  writeFileSync(join(at, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const name of ['server', 'client']) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    ssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      ...(name === 'server' ? ['-extfile', 'server.ext'] : []),
    );
  }
}

const tlsArgs = () => [
  '--tls-cert-file',
  join(dir, 'server.crt'),
  '--tls-key-file',
  join(dir, 'server.key'),
  '--tls-ca-cert-file',
  join(dir, 'ca.crt'),
  // Clients must show a certificate the CA signed.
  '--tls-auth-clients',
  'yes',
];

function startProcess(bin: string, args: string[]): ChildProcess {
  const child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c) => (output += c));
  child.stderr?.on('data', (c) => (output += c));
  child.on('exit', (code) => {
    if (code && code !== 0) process.stderr.write(`${bin} exited ${code}:\n${output}\n`);
  });
  children.push(child);
  return child;
}

/** A redis-server listening only on a TLS port, no persistence. */
function startTlsRedis(port: number, extra: string[] = []): ChildProcess {
  return startProcess('redis-server', [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--bind',
    '127.0.0.1',
    ...tlsArgs(),
    ...extra,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]);
}

function tlsConfig(redis: Record<string, unknown>) {
  return buildConfig(
    {
      redis: {
        ...redis,
        prefix: `tls${process.pid}${Math.random().toString(36).slice(2, 6)}`,
        tls: {
          caFile: join(dir, 'ca.crt'),
          certFile: join(dir, 'client.crt'),
          keyFile: join(dir, 'client.key'),
        },
      },
      ingress: { host: '127.0.0.1', port: 0 },
      sources: [{ id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] }],
      targets: [{ id: 'ci', url: 'http://127.0.0.1:9/hook' }],
      routes: [{ source: 'cloud', targets: ['ci'] }],
    },
    {},
  );
}

async function untilPong(config: ReturnType<typeof tlsConfig>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    // The worker kind of connection queues the PING until the TLS connection is up.
    const client = createRedis(config, 'worker', 'probe');
    client.on('error', () => {});
    try {
      const answer = await Promise.race([
        client.ping(),
        new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no answer in 3 s')), 3000)),
      ]);
      if (answer === 'PONG') return;
    } catch (err) {
      last = err;
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no PONG over TLS within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-redis-tls-'));
  makeCertificates(dir);
  [redisPort, sentinelPort] = [await freePort(), await freePort()];
  startTlsRedis(redisPort);
  writeFileSync(
    join(dir, 'sentinel.conf'),
    [
      'port 0',
      `tls-port ${sentinelPort}`,
      'bind 127.0.0.1',
      `tls-cert-file ${join(dir, 'server.crt')}`,
      `tls-key-file ${join(dir, 'server.key')}`,
      `tls-ca-cert-file ${join(dir, 'ca.crt')}`,
      'tls-auth-clients yes',
      // The sentinel talks to the primary over TLS as well, showing its certificate as a client's.
      'tls-replication yes',
      `sentinel monitor tlsprimary 127.0.0.1 ${redisPort} 1`,
      `dir ${dir}`,
      '',
    ].join('\n'),
  );
  await untilPong(tlsConfig({ url: `redis://127.0.0.1:${redisPort}` }));
  startProcess('redis-server', [join(dir, 'sentinel.conf'), '--sentinel']);
}, 60_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis over TLS (redis.tls)', () => {
  it('a TLS-only redis-server: the ingress stores a signed webhook through it', async () => {
    for (const url of [`redis://127.0.0.1:${redisPort}`, `rediss://127.0.0.1:${redisPort}`]) {
      const ing = await startIngress(tlsConfig({ url }), captureLogs().log);
      try {
        const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
        expect(res.status, url).toBe(202);
        await routed(ing, String(res.json.id));
        expect(await ing.runtime.queues.get('ci')!.getJobCounts('waiting', 'delayed')).toMatchObject({
          waiting: 1,
        });
      } finally {
        await ing.close();
      }
    }
  }, 60_000);

  it('through a sentinel that speaks TLS, to the primary it names, over TLS', async () => {
    const config = tlsConfig({ sentinels: [`127.0.0.1:${sentinelPort}`], name: 'tlsprimary' });
    await untilPong(config, 30_000);
    const ing = await startIngress(config, captureLogs().log);
    try {
      const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref: 'via-sentinel' })));
      expect(res.status).toBe(202);
    } finally {
      await ing.close();
    }
  }, 60_000);

  it('a TLS-only cluster of three primaries: every node over TLS, the webhook stored', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      // The cluster bus over TLS too; the nodes announce their TLS ports.
      startTlsRedis(port, [
        '--tls-cluster',
        'yes',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
      ]);
    }
    for (const port of ports) await untilPong(tlsConfig({ url: `redis://127.0.0.1:${port}` }));
    const cli = (...args: string[]) =>
      spawnSync(
        'redis-cli',
        [
          '--tls',
          '--cacert',
          join(dir, 'ca.crt'),
          '--cert',
          join(dir, 'client.crt'),
          '--key',
          join(dir, 'client.key'),
          ...args,
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
    const created = cli('--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes');
    expect(created.status, `${created.stdout}${created.stderr}`).toBe(0);
    const deadline = Date.now() + 30_000;
    while (!ports.every((p) => /cluster_state:ok/.test(cli('-p', String(p), 'cluster', 'info').stdout))) {
      if (Date.now() > deadline) throw new Error('the TLS cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 200));
    }

    const config = tlsConfig({ cluster: ports.map((p) => `127.0.0.1:${p}`) });
    const logs = captureLogs();
    const ing = await startIngress(config, logs.log);
    try {
      for (let i = 0; i < 3; i += 1) {
        const res = await send(
          ing.url,
          'cloud',
          cloudRequest('repo:push', cloudPush({ ref: `cluster-${i}` })),
        );
        expect(res.status, logs.raw()).toBe(202);
      }
    } finally {
      await ing.close();
    }
  }, 90_000);

  it('names the bad key: a client certificate without its key, a missing file, TLS on a unix socket', () => {
    const problems = (redis: Record<string, unknown>) => {
      try {
        buildConfig(
          {
            redis,
            sources: [{ id: 'a', platform: 'cloud', secrets: ['s'] }],
            targets: [{ id: 'j', url: 'http://127.0.0.1:9/' }],
            routes: [{ source: 'a', targets: ['j'] }],
          },
          {},
        );
        return [];
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
        throw err;
      }
    };
    expect(problems({ url: 'redis://r:6379', tls: { certFile: join(dir, 'client.crt') } })).toEqual([
      'redis.tls.keyFile: is required with redis.tls.certFile',
    ]);
    expect(problems({ url: 'redis://r:6379', tls: { caFile: '/nonexistent/ca.pem' } })).toEqual([
      'redis.tls.caFile: no such file: /nonexistent/ca.pem',
    ]);
    expect(problems({ url: 'unix:///run/redis.sock', tls: {} })[0]).toMatch(/^redis\.tls: a unix/);
  });
});
