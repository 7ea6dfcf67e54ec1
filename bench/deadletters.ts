/**
 * `npm run bench deadletters`: the dead-letter list with 100k dead letters. Fills the dead-letter index and the
 * events' hashes as the workers leave them (no BullMQ job is read by a list), then measures the list page's
 * latency through the real admin process, and the ingress p99 alone and while eight clients list in a loop.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../src/config/types.js';
import { targetField } from '../src/queue/delivery-state.js';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { makeKeys } from '../src/queue/keys.js';
import {
  benchRedisUrl,
  fmt,
  ioredisEndpoint,
  type LoadResult,
  load,
  waitReady,
  writeYaml,
} from './harness.js';
import { makeSignedPushes } from './payloads.js';

const SECRET = 'bench-secret';
const TOKEN = 'bench-admin-token-0123456789';
const DEAD = 100_000;
const LISTERS = 8;

export interface DeadLetterBench {
  deadLetters: number;
  /** Client-side latency of one list page (ms): the first page, a filtered page, a page deep in the index. */
  pages: Record<string, { p50: number; p95: number; p99: number; max: number }>;
  ingressAlone: LoadResult;
  ingressWhileListing: LoadResult;
  listsWhileLoading: number;
}

function config(redisUrl: string, ingressPort: number, adminPort: number): string {
  return `
redis: { url: "${redisUrl}", prefix: bench }
ingress: { host: 127.0.0.1, port: ${ingressPort}, bodyLimit: 1048576 }
admin: { host: 127.0.0.1, port: ${adminPort}, tokens: [{ name: bench, token: "${TOKEN}", role: operator }] }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRET}"] }]
targets:
  - { id: jenkins, url: "http://127.0.0.1:9/jenkins" }
  - { id: teamcity, url: "http://127.0.0.1:9/teamcity" }
routes: [{ source: cloud, targets: [jenkins, teamcity] }]
log: { level: warn }
`;
}

const keys = makeKeys({ redis: { prefix: 'bench' } } as Pick<Config, 'redis'>);

/** 100k dead letters as the workers record them: event hash (meta, ok, the delivery's state) and index entry. */
async function fill(redis: Redis): Promise<void> {
  const now = Date.now();
  for (let start = 0; start < DEAD; start += 1000) {
    const p = redis.pipeline();
    for (let i = start; i < Math.min(DEAD, start + 1000); i++) {
      const id = randomUUID();
      const target = i % 3 === 0 ? 'teamcity' : 'jenkins';
      const at = now - (DEAD - i) * 1000;
      const status = i % 7 === 0 ? 410 : 503;
      const meta = {
        sourceId: 'cloud',
        receivedAt: at - 60_000,
        targets: ['jenkins', 'teamcity'],
        envelope: {
          platform: 'cloud',
          eventKey: 'repo:push',
          deliveryId: randomUUID(),
          repository: `acme/repo-${i % 50}`,
          refs: [
            { name: i % 2 ? 'main' : `feature/${i}`, kind: 'branch', oldHash: null, newHash: 'a'.repeat(40) },
          ],
          commits: [],
        },
      };
      const state = {
        state: 'dead',
        attempts: [{ n: 1, at, ms: 120, status, trigger: 'bitbucket' }],
        reason: status === 410 ? 'status 410' : 'max attempts',
        excerpt: 'Service Unavailable',
        updatedAt: at,
      };
      p.hset(
        keys.event(id),
        'meta',
        JSON.stringify(meta),
        'ok',
        String(at),
        targetField(target),
        JSON.stringify(state),
      );
      p.zadd(keys.deadLetters, at, `${id}.${target}`);
    }
    await p.exec();
  }
}

async function timePages(url: string, path: string, n: number) {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
    await res.arrayBuffer();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]! * 10) / 10;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
}

export async function benchDeadLetters(seconds = 6): Promise<DeadLetterBench> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-dl-'));
  const redis = await startEmbeddedRedis({ dir });
  const redisUrl = benchRedisUrl(redis);
  const inspect = new Redis(ioredisEndpoint(redisUrl));
  const ingressPort = 20000 + Math.floor(Math.random() * 20000);
  const adminPort = ingressPort + 1;
  const cfg = writeYaml(dir, 'relay.yaml', config(redisUrl, ingressPort, adminPort));
  const children = ['ingress', 'admin'].map((role) =>
    spawn(process.execPath, ['bin/hookrelay.js', role, '--config', cfg], {
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    const ingress = `http://127.0.0.1:${ingressPort}`;
    const admin = `http://127.0.0.1:${adminPort}`;
    await waitReady(`${ingress}/readyz`);
    await waitReady(`${admin}/readyz`);
    await fill(inspect);
    const count = await inspect.zcard(keys.deadLetters);
    const first = (await (
      await fetch(`${admin}/api/dead-letters?limit=50`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { nextCursor: string | null };
    // A cursor about halfway down the index.
    const middle = await inspect.zrevrange(keys.deadLetters, DEAD / 2, DEAD / 2, 'WITHSCORES');
    const deep = Buffer.from(JSON.stringify({ f: Number(middle[1]), id: middle[0] })).toString('base64url');
    if (!first.nextCursor) throw new Error('no second page');
    await timePages(admin, '/api/dead-letters?limit=50', 20); // warm-up
    const pages = {
      'first page (50)': await timePages(admin, '/api/dead-letters?limit=50', 200),
      'filtered (target, 5xx)': await timePages(
        admin,
        '/api/dead-letters?limit=50&target=jenkins&status=5xx',
        200,
      ),
      'halfway down (cursor)': await timePages(admin, `/api/dead-letters?limit=50&cursor=${deep}`, 200),
      'console page': await timePages(admin, '/console/dead-letters', 100),
    };

    const reqs = makeSignedPushes(30_000, SECRET);
    await load(ingress, '/hooks/cloud', reqs.slice(0, 2000), 2, 8);
    const ingressAlone = await load(ingress, '/hooks/cloud', reqs.slice(2000, 16_000), seconds, 8);
    let listing = true;
    let lists = 0;
    const listers = Array.from({ length: LISTERS }, async () => {
      while (listing) {
        const res = await fetch(`${admin}/api/dead-letters?limit=50`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        await res.arrayBuffer();
        lists += 1;
      }
    });
    const ingressWhileListing = await load(ingress, '/hooks/cloud', reqs.slice(16_000), seconds, 8);
    listing = false;
    await Promise.all(listers);
    return {
      deadLetters: count,
      pages,
      ingressAlone,
      ingressWhileListing,
      listsWhileLoading: lists / seconds,
    };
  } finally {
    for (const c of children) c.kill();
    inspect.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printDeadLetters(r: DeadLetterBench): void {
  console.log(`\n== dead letters (${r.deadLetters} in the index) ==`);
  for (const [name, p] of Object.entries(r.pages))
    console.log(`${name.padEnd(24)} p50 ${p.p50} ms  p95 ${p.p95} ms  p99 ${p.p99} ms  max ${p.max} ms`);
  console.log(`ingress alone            ${fmt(r.ingressAlone)}`);
  console.log(
    `ingress, ${LISTERS} listing      ${fmt(r.ingressWhileListing)}  (${r.listsWhileLoading.toFixed(0)} lists/s)`,
  );
}
