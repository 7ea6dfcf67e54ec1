/**
 * Where an accepted webhook's CPU goes, stage by stage, on the same signed pushes as the ingest bench: each
 * stage in a loop of its own (CPU µs per webhook). The ingress's stages (signature, body hash, the append: one
 * script call per event, 16 in flight against a real redis-server, as this process's CPU per call) come
 * first, then the fan-out's (parse, schema, envelope, content keys, routing), which run in the workers. HTTP
 * itself is left out: the ingest bench's bare Fastify figure covers it. Run: `npm run bench stages`.
 */

import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nestsDeeperThan } from '../src/bitbucket/json-depth.js';
import { normalise } from '../src/bitbucket/normalise.js';
import { validatePayload } from '../src/bitbucket/payload-schemas.js';
import { safeJsonParse } from '../src/bitbucket/safe-json.js';
import { verifySignature } from '../src/bitbucket/signature.js';
import { parseConfigText } from '../src/config/load-config.js';
import { contentDedupeKeys } from '../src/fanout/content-dedupe.js';
import { newEventId } from '../src/ingress/event-id.js';
import { createLogger } from '../src/log.js';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { makeKeys } from '../src/queue/keys.js';
import { createRuntime, waitForRedis } from '../src/runtime.js';
import { benchRedisUrl } from './harness.js';
import { makeSignedPushes } from './payloads.js';

const SECRET = 'bench-secret';
const windows = { deliveryIdWindow: 60_000, contentWindow: 60_000 };
const bodyHash = (body: Buffer) => createHash('sha256').update(body).digest('base64url');
const benchKeys = makeKeys({ redis: { prefix: 'stages' } } as Parameters<typeof makeKeys>[0]);

export interface StageCosts {
  /** Stage name → CPU µs per webhook. */
  stages: [string, number][];
}

/** CPU µs (user + system) per call of `fn` over `n` calls, after a warm-up. */
function perCall(n: number, fn: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(i);
  const before = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

export async function benchIngestStages(n = 20_000): Promise<StageCosts> {
  // A few hundred distinct payloads, cycled: a large live heap would bill the loops for GC they do not cause.
  const reqs = makeSignedPushes(300, SECRET);
  const at = (i: number) => reqs[i % reqs.length]!;
  const texts = reqs.map((r) => r.body.toString('utf8'));
  const payloads = texts.map((t) => JSON.parse(t));
  const envelope = (i: number) =>
    normalise({
      platform: 'cloud',
      eventKey: 'repo:push',
      deliveryId: at(i).headers['x-request-uuid']!,
      hookId: at(i).headers['x-hook-uuid']!,
      attempt: 1,
      payload: payloads[i % reqs.length],
    });
  const envelopes = reqs.map((_, i) => envelope(i));
  const stages: [string, number][] = [
    [
      'JSON.parse (bare Fastify does this too; hookrelay at fan-out)',
      perCall(n, (i) => JSON.parse(texts[i % texts.length]!)),
    ],
    [
      'ingress: signature (HMAC-SHA256, constant-time compare)',
      perCall(n, (i) => verifySignature(at(i).headers['x-hub-signature'], at(i).body, [SECRET])),
    ],
    [
      'fan-out: UTF-8 check + decode + safe parse',
      perCall(n, (i) => isUtf8(at(i).body) && safeJsonParse(at(i).body.toString('utf8'))),
    ],
    ['fan-out: nesting depth scan', perCall(n, (i) => nestsDeeperThan(at(i).body))],
    [
      'fan-out: schema validation (ajv)',
      perCall(n, (i) => validatePayload('cloud', 'push', payloads[i % payloads.length])),
    ],
    ['fan-out: normalise to the envelope', perCall(n, envelope)],
    ['ingress: body SHA-256 (replay guard, inbox shard)', perCall(n, (i) => bodyHash(at(i).body))],
    [
      'fan-out: content dedupe keys',
      perCall(n, (i) =>
        contentDedupeKeys(benchKeys, windows, {
          sourceId: 'cloud',
          envelope: envelopes[i % envelopes.length]!,
          bodyHash: 'x',
          shard: 0,
        }),
      ),
    ],
  ];

  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-stages-'));
  const redis = await startEmbeddedRedis({ dir });
  try {
    const config = parseConfigText(`
redis: { url: "${benchRedisUrl(redis)}", prefix: stages }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRET}"] }]
targets: [{ id: ci, url: "http://127.0.0.1:9/ci" }]
routes: [{ source: cloud, targets: [ci] }]
`);
    const runtime = await createRuntime(config, createLogger('warn'));
    await waitForRedis(runtime.redis, 10_000);
    stages.push([
      'fan-out: routing',
      perCall(n, (i) => runtime.router.match('cloud', envelopes[i % envelopes.length]!)),
    ]);
    const storeOne = (i: number) => {
      const r = at(i);
      // Delivery id and body hash unique per call, so each append is a new event, as under real traffic.
      return runtime.store.append({
        id: newEventId(),
        sourceId: 'cloud',
        platform: 'cloud',
        eventKey: 'repo:push',
        deliveryId: `${i}`,
        bodyHash: `${i}`,
        receivedAt: Date.now(),
        headers: r.headers,
        body: r.body,
        clientIp: '127.0.0.1',
      });
    };
    let next = 0;
    const run = async (count: number) => {
      const stop = next + count;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < stop) await storeOne(next++);
        }),
      );
    };
    await run(2000);
    const before = process.cpuUsage();
    await run(n);
    const used = process.cpuUsage(before);
    stages.push([
      'ingress: append (compress, encode, one script call, 16 in flight)',
      (used.user + used.system) / n,
    ]);
    await runtime.close();
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { stages };
}

export function printIngestStages(r: StageCosts): void {
  console.log('\n== CPU per accepted webhook, by stage (µs; HTTP not included) ==');
  for (const [name, us] of r.stages) console.log(`${us.toFixed(1).padStart(8)}  ${name}`);
  const sum = (prefix: string) =>
    r.stages.filter(([name]) => name.startsWith(prefix)).reduce((total, [, us]) => total + us, 0);
  console.log(`${sum('ingress:').toFixed(1).padStart(8)}  ingress, before the 202`);
  console.log(`${sum('fan-out:').toFixed(1).padStart(8)}  fan-out, in the workers`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printIngestStages(await benchIngestStages());
  process.exit(0);
}
