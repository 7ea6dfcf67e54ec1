import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEmbeddedRedisPassword } from '../../src/queue/data-folder.js';
import { answersPing, startEmbeddedRedis } from '../../src/queue/embedded-redis.js';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest } from '../helpers/bitbucket.js';
import { runCli, startCliServer } from '../helpers/cli.js';
import { SECRETS } from '../helpers/config.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

// `hookrelay start` with no redis.url: the quick start's path. It runs its own redis-server (AOF on) and talks
// to it over a Unix socket in the data folder.
describe('hookrelay start with the embedded Redis', { timeout: 150_000 }, () => {
  let dir: string;
  let config: string;
  let target: TargetServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-embedded-'));
    target = await startTargetServer();
    config = join(dir, 'hookrelay.yaml');
    writeFileSync(
      config,
      `
redis: { dataDir: "${join(dir, 'data')}" }
ingress: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "${target.url}/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
    );
  });

  afterAll(async () => {
    await target.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers over the Unix socket, and a restart with the same data folder still has the event', async () => {
    const socket = join(dir, 'data', 'redis.sock');
    const relay = await startCliServer(['start', '--config', config], 'ingress listening', {}, 90_000);
    let eventId: string;
    try {
      const req = cloudRequest('repo:push', cloudPush());
      const res = await fetch(`${relay.url}/hooks/cloud`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      expect(res.status).toBe(202);
      eventId = ((await res.json()) as { id: string }).id;
      const [got] = await target.waitFor(1);
      expect(got!.body.equals(req.body)).toBe(true);

      // Every connection the relay opened came in through the socket, none over TCP.
      expect(existsSync(socket)).toBe(true);
      const inspect = new Redis({ path: socket, password: readEmbeddedRedisPassword(join(dir, 'data')) });
      try {
        const clients = ((await inspect.client('LIST')) as string)
          .trim()
          .split('\n')
          .filter((line) => / name=hookrelay-/.test(line));
        expect(clients.length).toBeGreaterThanOrEqual(2);
        for (const line of clients) expect(line).toContain(`addr=${socket}`);
      } finally {
        inspect.disconnect();
      }
    } finally {
      await relay.stop();
    }
    expect(relay.child.exitCode).toBe(0);

    // AOF on: what was acknowledged is still there once the relay (and its Redis) start again.
    const again = await startCliServer(['start', '--config', config], 'ingress listening', {}, 90_000);
    try {
      const inspect = new Redis({ path: socket, password: readEmbeddedRedisPassword(join(dir, 'data')) });
      try {
        const keys = await inspect.keys(`*:ev:${eventId!}`);
        expect(keys).toHaveLength(1);
        expect(await inspect.hexists(keys[0]!, 'body')).toBe(1);
      } finally {
        inspect.disconnect();
      }
    } finally {
      await again.stop();
    }
    expect(again.child.exitCode).toBe(0);
    // It stopped its redis-server too (it was stopped right after listening, before start-up had finished).
    expect(await answersPing({ path: socket })).toBe(false);
  });

  it('a start that fails after the ingress listens stops everything it began, its redis-server too', async () => {
    const taken = createServer();
    await new Promise<void>((res) => taken.listen(0, '127.0.0.1', res));
    const port = (taken.address() as AddressInfo).port;
    const data = join(dir, 'failed-start');
    const cfg = join(dir, 'failed-start.yaml');
    writeFileSync(
      cfg,
      `
redis: { dataDir: "${data}" }
ingress: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: ${port} }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "${target.url}/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
    );
    try {
      const res = await runCli(['start', '--config', cfg], {}, 90_000);
      expect(res.code).not.toBe(0);
      expect(res.stdout).toContain('ingress listening');
      expect(await answersPing({ path: join(data, 'redis.sock') })).toBe(false);
    } finally {
      taken.close();
    }
  });

  it('runs on loopback TCP alone, with its password, where the data folder cannot hold a socket', async () => {
    const data = join(dir, 'no-socket');
    // A directory where the socket would go: Redis cannot bind it and exits at once, as on a share.
    mkdirSync(join(data, 'redis.sock'), { recursive: true });
    const redis = await startEmbeddedRedis({ dir: data, tcpPort: false, password: 'fallback-password' });
    try {
      expect(redis.socketUrl).toBeUndefined();
      expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      expect(await answersPing(redis.url!)).toBe(false);
      const probe = new Redis(redis.url!, { password: 'fallback-password' });
      try {
        expect(await probe.ping()).toBe('PONG');
        expect(await probe.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
      } finally {
        probe.disconnect();
      }
    } finally {
      await redis.stop();
    }
  });
});
