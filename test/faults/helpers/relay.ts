import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cluster, Redis, type RedisOptions } from 'ioredis';
import { stringify } from 'yaml';
import type { Config } from '../../../src/config/types.js';
import { type Keys, makeKeys } from '../../../src/queue/keys.js';
import { freePort, waitFor } from '../../edge/helpers/processes.js';
import { type RelayProc, startIngressProc, startWorkerProc } from '../../edge/helpers/stack.js';
import { SECRETS } from '../../helpers/config.js';
import type { DriverStats } from './driver.js';
import type { IdempotentTarget } from './idempotent-target.js';

export interface FaultConfig {
  dir: string;
  /** The `redis:` block (url or sentinels + name, durability, …); prefix and timeout are added. */
  redis: Record<string, unknown>;
  prefix: string;
  targetUrl: string;
  targets: string[];
  /** Per-target overrides (retry, timeout, concurrency, …). */
  target?: Record<string, unknown>;
  retention?: Record<string, unknown>;
  /** Merged into the `loop:` block (e.g. shorter per-ref windows for the soak). */
  loop?: Record<string, unknown>;
  /** Merged into the `ingress:` block (e.g. dedupe windows). */
  ingress?: Record<string, unknown>;
  /** The `admin:` block, for `hookrelay start` (which serves admin too). */
  admin?: Record<string, unknown>;
}

/**
 * One YAML config per process (the ingress port differs; everything else is shared): one Cloud source, the
 * given targets all on the idempotent target server (path = target id), a route to all of them.
 */
export function writeFaultConfig(c: FaultConfig, name: string, port: number): string {
  const tree = {
    redis: { commandTimeout: 1000, ...c.redis, prefix: c.prefix },
    ingress: { host: '127.0.0.1', port, bodyLimit: 1048576, ...c.ingress },
    sources: [{ id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] }],
    targets: c.targets.map((id) => ({
      id,
      url: `${c.targetUrl}/${id}`,
      timeout: 2000,
      concurrency: 8,
      retry: { attempts: 10, delay: 100, maxDelay: 1000 },
      // The breaker is not what these cases measure; a tripped breaker would only slow them down.
      circuit: { failureThreshold: 100000, cooldown: 100 },
      ...c.target,
    })),
    routes: [{ source: 'cloud', targets: c.targets }],
    // Every webhook is a distinct push on its own ref: the per-ref trigger cap must not suppress any.
    loop: { maxTriggersPerRef: { count: 100000, window: '10m' }, ...c.loop },
    ...(c.retention ? { retention: c.retention } : {}),
    ...(c.admin ? { admin: c.admin } : {}),
    log: { level: 'info' },
  };
  const file = join(c.dir, `${name}.yaml`);
  writeFileSync(file, stringify(tree));
  return file;
}

export function inspector(opts: RedisOptions | string): Redis {
  const r = typeof opts === 'string' ? new Redis(opts) : new Redis(opts);
  r.on('error', () => {});
  return r;
}

export interface RunReport {
  acked: number;
  targets: number;
  /** (event, target) keys owed: acked × targets. */
  owed: number;
  /** Owed keys the idempotent target processed (2xx) — must equal owed. */
  processed: number;
  /** Later copies of a processed key (answered 200 duplicate by the idempotent target). */
  duplicates: number;
  /** Keys with more than one copy after processing. */
  keysWithDuplicates: number;
  /** Keys the target processed that no 2xx vouched for (stored, but the sender saw a 503 or no answer). */
  extraProcessed: number;
  missingFromIndex: number;
  driver: Omit<DriverStats, 'acked'>;
}

/**
 * The end-of-run promise check: every acknowledged event is delivered to every target (polled, bounded), each
 * of those keys was processed exactly once at the idempotent target, and every acknowledged event is in the
 * event index ZSET.
 */
export async function verifyRun(o: {
  stats: DriverStats;
  target: IdempotentTarget;
  targets: string[];
  redis: Redis | Cluster;
  prefix: string;
  /** The relay's keys when they are not a single Redis's under `prefix` (a cluster's shards). */
  keys?: Keys;
  timeoutMs?: number;
}): Promise<{ report: RunReport; missing: string[]; notIndexed: string[]; mismatched: string[] }> {
  const ids = [...o.stats.acked.keys()];
  const owed = ids.flatMap((id) => o.targets.map((t) => `${id}.${t}`));
  const missingNow = () => owed.filter((k) => !o.target.keys.get(k)?.processed);
  await waitFor(
    `all ${owed.length} acknowledged deliveries at the target`,
    () => missingNow().length === 0,
    o.timeoutMs ?? 60_000,
    200,
  ).catch(() => undefined);
  const missing = missingNow();
  const keys = o.keys ?? makeKeys({ redis: { prefix: o.prefix } as Config['redis'] });
  const indexOf = (id: string) => keys.eventIndexOf(keys.shardOfId(id));
  const byIndex = new Map<string, string[]>();
  for (const id of ids) byIndex.set(indexOf(id), [...(byIndex.get(indexOf(id)) ?? []), id]);
  const notIndexed: string[] = [];
  for (const [key, all] of byIndex) {
    for (let i = 0; i < all.length; i += 500) {
      const chunk = all.slice(i, i + 500);
      const scores = (await o.redis.call('ZMSCORE', key, ...chunk)) as (string | null)[];
      notIndexed.push(...chunk.filter((_, j) => scores[j] === null));
    }
  }
  const owedSet = new Set(owed);
  const records = [...o.target.keys.entries()];
  const mismatched = records
    .filter(([k, r]) => r.eventMismatch || !k.startsWith(`${r.event}.`))
    .map(([k]) => k);
  const { acked: _acked, ...driver } = o.stats;
  const report: RunReport = {
    acked: ids.length,
    targets: o.targets.length,
    owed: owed.length,
    processed: owed.length - missing.length,
    duplicates: o.target.duplicateCount(),
    keysWithDuplicates: records.filter(([, r]) => r.duplicates > 0).length,
    extraProcessed: records.filter(([k, r]) => r.processed && !owedSet.has(k)).length,
    missingFromIndex: notIndexed.length,
    driver,
  };
  return { report, missing, notIndexed, mismatched };
}

/** One line the suite's output can be read back from (docs/reliability.md quotes these). */
export function printReport(name: string, report: object): void {
  process.stdout.write(`FAULT-REPORT ${name} ${JSON.stringify(report)}\n`);
}

/** The usual pair of a fault case: one `hookrelay ingress` process on a free port and one `hookrelay worker`. */
export async function startIngressAndWorker(cfg: FaultConfig): Promise<[RelayProc, RelayProc]> {
  const port = await freePort();
  return Promise.all([
    startIngressProc('ingress', writeFaultConfig(cfg, 'ingress', port), port),
    startWorkerProc('worker', writeFaultConfig(cfg, 'worker', 0)),
  ]);
}

/** Clients a fault case opens to look into Redis nodes, one per port, all closed by `closeAll()`. */
export function nodeClients(): {
  node(port: number): Redis;
  track<T extends { disconnect(): void }>(c: T): T;
  closeAll(): void;
} {
  const open: { disconnect(): void }[] = [];
  const byPort = new Map<number, Redis>();
  return {
    node(port) {
      let c = byPort.get(port);
      if (!c) {
        c = inspector({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
        byPort.set(port, c);
        open.push(c);
      }
      return c;
    },
    track(c) {
      open.push(c);
      return c;
    },
    closeAll() {
      for (const c of open.splice(0)) c.disconnect();
      byPort.clear();
    },
  };
}
