import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { SECRETS } from '../../helpers/config.js';
import { freePort, type Proc, requireBinary, spawnTracked, stopOne, waitFor } from './processes.js';

export const REPO = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const HAPROXY_CFG = join(REPO, 'haproxy', 'haproxy.cfg');

export function requireHaproxy(): string {
  return requireBinary(
    'haproxy',
    ['-v'],
    'Install it (Debian/Ubuntu: apt-get install haproxy; .ci/run does this) — the edge tests run the real binary and do not skip.',
  );
}

export function requireBuild(): void {
  if (!existsSync(join(REPO, 'dist', 'src', 'cli', 'main.js'))) {
    throw new Error(
      'dist/ is missing: run `npm run build` first (npm test does it) — bin/hookrelay.js runs dist/.',
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// The CI target: a local HTTP server that records every delivery.

export interface Delivery {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

export interface Target {
  url: string;
  deliveries: Delivery[];
  /** Deliveries by X-Request-UUID (Cloud's delivery id, passed through by the relay). */
  byRequestUuid(): Map<string, Delivery[]>;
  close(): Promise<void>;
}

export async function startTarget(): Promise<Target> {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/bitbucket-hook/`,
    deliveries,
    byRequestUuid() {
      const m = new Map<string, Delivery[]>();
      for (const d of deliveries) {
        const id = String(d.headers['x-request-uuid'] ?? '');
        m.set(id, [...(m.get(id) ?? []), d]);
      }
      return m;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Relay processes: real `node bin/hookrelay.js ingress|worker --config FILE`.

export interface RelayConfigOpts {
  redisUrl: string;
  prefix: string;
  targetUrl: string;
  port: number;
  logLevel?: string;
}

/** The relay config as a YAML file: one Cloud source ("cloud"), one target ("ci"), one route. */
export function writeRelayConfig(file: string, o: RelayConfigOpts): string {
  const tree = {
    redis: { url: o.redisUrl, prefix: o.prefix, commandTimeout: 2000 },
    // A configured relay id (the default is generated per deployment): the hop-marker test sends it.
    relay: { id: 'hookrelay' },
    ingress: {
      host: '127.0.0.1',
      port: o.port,
      bodyLimit: 1048576,
      // HAProxy connects from 127.0.0.1: its X-Forwarded-For is trusted, nobody else's.
      trustProxy: ['127.0.0.1'],
    },
    sources: [{ id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] }],
    targets: [
      {
        id: 'ci',
        url: o.targetUrl,
        timeout: 5000,
        concurrency: 8,
        retry: { attempts: 10, delay: 200, maxDelay: 2000 },
      },
    ],
    routes: [{ source: 'cloud', targets: ['ci'] }],
    // The tests push hundreds of events; the per-ref trigger cap must not be what they measure.
    loop: { maxTriggersPerRef: { count: 100000, window: '10m' } },
    log: { level: o.logLevel ?? 'info' },
  };
  writeFileSync(file, stringify(tree));
  return file;
}

export interface RelayProc extends Proc {
  port?: number;
  url?: string;
  /** The ingress's one-line-per-webhook log entries (msg "webhook"). */
  webhookLines(): Record<string, unknown>[];
}

function relayEnv(): NodeJS.ProcessEnv {
  const { HOOKRELAY_CONFIG: _drop, ...env } = process.env;
  return env;
}

function asRelay(p: Proc, port?: number): RelayProc {
  return Object.assign(p, {
    ...(port !== undefined ? { port, url: `http://127.0.0.1:${port}` } : {}),
    webhookLines: () => p.json().filter((l) => l.msg === 'webhook'),
  });
}

export async function startIngressProc(
  name: string,
  configFile: string,
  port: number,
  /** command: `start` runs every role in one process (and the embedded Redis without redis.url). */
  opts: { quiet?: boolean; command?: 'ingress' | 'start'; readyTimeoutMs?: number } = {},
): Promise<RelayProc> {
  const p = spawnTracked(
    name,
    process.execPath,
    [join(REPO, 'bin', 'hookrelay.js'), opts.command ?? 'ingress', '--config', configFile],
    { cwd: REPO, env: relayEnv(), quiet: opts.quiet ?? false },
  );
  await waitFor(
    `${name} /readyz on port ${port}`,
    async () => {
      if (!p.isRunning()) throw new Error(`${name} exited:\n${p.output()}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      await res.arrayBuffer();
      return res.status === 200;
    },
    opts.readyTimeoutMs ?? 30_000,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${name} output ---\n${p.output()}`);
  });
  return asRelay(p, port);
}

export async function startWorkerProc(name: string, configFile: string): Promise<RelayProc> {
  const p = spawnTracked(
    name,
    process.execPath,
    [join(REPO, 'bin', 'hookrelay.js'), 'worker', '--config', configFile],
    {
      cwd: REPO,
      env: relayEnv(),
    },
  );
  await waitFor(
    `${name} to start its delivery workers`,
    () => {
      if (!p.isRunning()) throw new Error(`${name} exited:\n${p.output()}`);
      return p.json().some((l) => l.msg === 'delivery workers started');
    },
    30_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${name} output ---\n${p.output()}`);
  });
  return asRelay(p);
}

// ---------------------------------------------------------------------------------------------------------
// TLS certificate and HAProxy.

export interface Cert {
  pem: string;
  crt: string;
  ca: Buffer;
}

export function makeDevCert(dir: string): Cert {
  execFileSync('sh', [join(REPO, 'haproxy', 'make-dev-cert.sh'), '--force', dir], { stdio: 'pipe' });
  const crt = join(dir, 'hookrelay.crt');
  return { pem: join(dir, 'hookrelay.pem'), crt, ca: readFileSync(crt) };
}

export interface Edge {
  proc: Proc;
  httpsPort: number;
  httpPort: number;
  httpsUrl: string;
  httpUrl: string;
  socket: string;
  /** HAProxy's access-log lines (stdout). */
  logs(): string[];
  /** `show stat` over the stats socket: "backend/server" → status ("UP", "DOWN", "UP 1/2", ...). */
  serverStatus(): Promise<Record<string, string>>;
  /** `show stat` rows: "proxy/server" (or "proxy/FRONTEND", "proxy/BACKEND") → column → value. */
  stats(): Promise<Record<string, Record<string, string>>>;
  stop(): Promise<void>;
}

export interface EdgeOpts {
  name: string;
  dir: string;
  cert: string;
  ingress: [string, string];
  admin: string;
  /** More HR_* settings (HR_BODY_MAX, HR_RATE_LIMIT, HR_ALLOWLIST, HR_ADMIN_NETS_FILE, ...). */
  env?: Record<string, string>;
  /** Servers that must be UP before the edge counts as started (default: both ingress servers). */
  waitUp?: string[];
  /** Access log to /dev/null instead of logs() (the bench). */
  quiet?: boolean;
  /** Another haproxy.cfg (the bench's EDGE_BENCH_CFG, to compare a variant); default haproxy/haproxy.cfg. */
  cfg?: string;
}

/** One command on HAProxy's runtime API (unix socket); resolves with the whole answer. */
export function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const conn = connect(socket);
    let out = '';
    conn.setEncoding('utf8');
    conn.setTimeout(3000, () => conn.destroy(new Error(`${command}: no answer from ${socket}`)));
    conn.on('connect', () => conn.write(`${command}\n`));
    conn.on('data', (d: string) => {
      out += d;
    });
    conn.on('end', () => resolvePromise(out));
    conn.on('error', reject);
  });
}

export async function startEdge(o: EdgeOpts): Promise<Edge> {
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  const socket = join(o.dir, `${o.name}.sock`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HR_HTTP_BIND: `127.0.0.1:${httpPort}`,
    HR_HTTPS_BIND: `127.0.0.1:${httpsPort}`,
    HR_CERT: o.cert,
    HR_INGRESS1: o.ingress[0],
    HR_INGRESS2: o.ingress[1],
    HR_ADMIN: o.admin,
    HR_ALLOWLIST: 'off',
    HR_ALLOWLIST_FILE: join(REPO, 'haproxy', 'bitbucket-ips.lst'),
    HR_ADMIN_NETS_FILE: join(REPO, 'haproxy', 'admin-nets.lst'),
    HR_LOG_TARGET: 'stdout',
    HR_STATS_SOCKET: socket,
    ...o.env,
  };
  const proc = spawnTracked(o.name, 'haproxy', ['-db', '-f', o.cfg ?? HAPROXY_CFG], {
    cwd: o.dir,
    env,
    quiet: o.quiet ?? false,
  });
  const stats = async () => {
    const csv = await haproxyCommand(socket, 'show stat');
    const rows = csv.split('\n').filter((l) => l.trim());
    const header = (rows.shift() ?? '').replace(/^#\s*/, '').split(',');
    const out: Record<string, Record<string, string>> = {};
    for (const row of rows) {
      const f = row.split(',');
      const rec = Object.fromEntries(header.map((h, i) => [h, f[i] ?? '']));
      out[`${rec.pxname}/${rec.svname}`] = rec;
    }
    return out;
  };
  const serverStatus = async () =>
    Object.fromEntries(Object.entries(await stats()).map(([k, rec]) => [k, rec.status ?? '']));
  const waitUp = o.waitUp ?? ['ingress/ingress1', 'ingress/ingress2'];
  await waitFor(
    `${o.name}: ${waitUp.join(', ')} UP`,
    async () => {
      if (!proc.isRunning()) throw new Error(`haproxy exited:\n${proc.output()}`);
      const s = await serverStatus();
      return waitUp.every((k) => s[k] === 'UP');
    },
    20_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${o.name} output ---\n${proc.output()}`);
  });
  return {
    proc,
    httpsPort,
    httpPort,
    httpsUrl: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    socket,
    logs: () => proc.lines,
    serverStatus,
    stats,
    stop: () => stopOne(proc),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Clients.

/** HTTPS client that trusts the generated certificate (and verifies it), optionally from another loopback address. */
export function httpsAgent(ca: Buffer, localAddress?: string, connections = 16): Agent {
  return new Agent({
    connections,
    connect: { ca, servername: 'localhost' },
    ...(localAddress ? { localAddress } : {}),
  });
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

export async function call(
  url: string,
  opts: {
    method?: 'GET' | 'POST';
    headers?: Record<string, string>;
    body?: Buffer;
    dispatcher?: Agent;
  } = {},
): Promise<Reply> {
  const res = await request(url, {
    method: opts.method ?? (opts.body ? 'POST' : 'GET'),
    headers: opts.headers ?? {},
    ...(opts.body ? { body: opts.body } : {}),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    // Not JSON (HAProxy's built-in pages).
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}
