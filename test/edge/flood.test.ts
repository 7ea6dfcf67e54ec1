/**
 * The edge under a connection flood: one address opens thousands of idle TCP connections to the HTTPS port
 * (no TLS handshake, no request) — more than HAProxy's global maxconn — and a signed webhook from another
 * address must still get its 202. Real haproxy with haproxy/haproxy.cfg and its default limits, a real
 * ingress process and redis-server. The flood is bounded (count and time) and every socket is closed after.
 * Only loopback addresses: 127.0.0.2 floods, 127.0.0.3 is the legitimate sender.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis } from '../helpers/redis.js';
import { uniquePush } from './helpers/clients.js';
import { freePort, stopAll, waitFor } from './helpers/processes.js';
import {
  type Cert,
  call,
  type Edge,
  httpsAgent,
  makeDevCert,
  requireBuild,
  requireHaproxy,
  startEdge,
  startIngressProc,
  writeRelayConfig,
} from './helpers/stack.js';

/** More than the global maxconn (4096) of haproxy.cfg: without per-address limits this fills the edge. */
const FLOOD_CONNECTIONS = 4300;
const FLOOD_MAX_MS = 40_000;
/** haproxy.cfg's default HR_CONN_MAX. */
const CONN_MAX = 100;

let dir: string;
let redis: Awaited<ReturnType<typeof startTestRedis>> | undefined;
let cert: Cert;
let edge: Edge;
const sockets: Socket[] = [];

beforeAll(async () => {
  requireHaproxy();
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-flood-'));
  redis = await startTestRedis();
  cert = makeDevCert(join(dir, 'cert'));
  const port = await freePort();
  const cfg = writeRelayConfig(join(dir, 'ingress.yaml'), {
    redisUrl: redis.url,
    prefix: `flood${process.pid}`,
    targetUrl: 'http://127.0.0.1:9/unused',
    port,
  });
  await startIngressProc('ingress', cfg, port);
  const ingress = `127.0.0.1:${port}`;
  // Both backend servers on the one ingress: what is measured is the edge, not the pool.
  edge = await startEdge({
    name: 'edge-flood',
    dir,
    cert: cert.pem,
    ingress: [ingress, ingress],
    admin: ingress,
  });
}, 90_000);

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await stopAll();
  await redis?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** Attempts up to `count` idle connections from `localAddress`, `parallel` at a time, within `maxMs`. */
async function flood(port: number, localAddress: string, count: number, maxMs: number) {
  const deadline = Date.now() + maxMs;
  let attempted = 0;
  const openOne = () =>
    new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, localAddress });
      sockets.push(socket);
      attempted += 1;
      socket.setTimeout(5000, () => resolve());
      socket.once('connect', () => resolve());
      socket.once('error', () => resolve());
      socket.once('close', () => resolve());
    });
  const parallel = 200;
  for (let started = 0; started < count && Date.now() < deadline; started += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, count - started) }, openOne));
  }
  return attempted;
}

describe('a flood of idle connections from one address', () => {
  it('does not keep a signed webhook from another address from its 202', async () => {
    const attempted = await flood(edge.httpsPort, '127.0.0.2', FLOOD_CONNECTIONS, FLOOD_MAX_MS);
    expect(attempted).toBe(FLOOD_CONNECTIONS);

    const sender = httpsAgent(cert.ca, '127.0.0.3', 1);
    try {
      const { req } = uniquePush();
      const res = await call(`${edge.httpsUrl}/hooks/cloud`, {
        headers: req.headers,
        body: req.body,
        dispatcher: sender,
      });
      expect(res.status).toBe(202);
    } finally {
      await sender.close();
    }
    // The edge itself closed the flood beyond the per-address limit: at most HR_CONN_MAX are still open.
    const stillOpen = () => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
    await waitFor(
      `at most ${CONN_MAX} flood connections left open`,
      () => stillOpen() <= CONN_MAX,
      15_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${stillOpen()} open`);
    });
  }, 120_000);
});
