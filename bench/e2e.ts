/**
 * End-to-end rate: events per second from the ingress's 202 to a local CI target that answers 200 at once, for
 * hookrelay (every check and guarantee on) against a naive relay (bare Fastify route → Queue.add → plain BullMQ
 * Worker → POST) and a reference relay (the naive one plus the work per event hookrelay's promises require:
 * e2e-relay.ts), measured in the same run on the same payloads and the same Redis. Then the latency from the
 * 202 to the target's receipt at a steady 500 events/s. Run: `node --import tsx bench/e2e.ts [events]`.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { startEmbeddedRedis } from '../src/queue/embedded-redis.js';
import { type Keys, makeKeys } from '../src/queue/keys.js';
import { e2eRelayConfig } from './e2e-config.js';
import { benchRedisUrl, ioredisEndpoint } from './harness.js';
import { averageSize, type BenchRequest, makeSignedPushes } from './payloads.js';

const SECRET = 'bench-secret-0123456789';
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

export interface E2EResult {
  events: number;
  avgBytes: number;
  naiveRate: number;
  referenceRate: number;
  /** hookrelay's rate against the reference relay's. */
  ratioToReference: number;
  hookrelayRate: number;
  ratio: number;
  steadyRate: number;
  naiveP50: number;
  naiveP99: number;
  referenceP99: number;
  hookrelayP50: number;
  hookrelayP99: number;
  hookrelayMax: number;
  /** The relay process's CPU time (user + system) per event, burst and steady phases together. */
  naiveCpuMs: number;
  referenceCpuMs: number;
  hookrelayCpuMs: number;
  /** redis-server's CPU time per event, and the Redis commands per event (scripts count as one). */
  naiveRedisCpuMs: number;
  referenceRedisCpuMs: number;
  hookrelayRedisCpuMs: number;
  naiveRedisCalls: number;
  hookrelayRedisCalls: number;
  /** Every round's figures, in the order they ran. */
  rounds: Record<Mode, Round[]>;
}

type Mode = 'naive' | 'reference' | 'hookrelay';
const MODES: readonly Mode[] = ['naive', 'reference', 'hookrelay'];

interface Round {
  rate: number;
  p50: number;
  p99: number;
  max: number;
  cpuMs: number;
  redisCpuMs: number;
  redisCalls: number;
}

interface RedisUsage {
  cpuMs: number;
  calls: Map<string, number>;
}

/** redis-server's CPU time so far and its calls per command (INFO), to see what each relay costs Redis. */
async function redisUsage(client: Redis): Promise<RedisUsage> {
  const info = await client.info('all');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
  return { cpuMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000, calls };
}

function callsBetween(before: RedisUsage, after: RedisUsage): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, n] of after.calls) {
    const d = n - (before.calls.get(name) ?? 0);
    if (d > 0) out.set(name, d);
  }
  return out;
}

export function cpuOf(proc: ChildProcess): Promise<number> {
  return new Promise((res) => {
    const onMsg = (m: { cpu?: { user: number; system: number } }) => {
      if (m.cpu) {
        proc.off('message', onMsg);
        res((m.cpu.user + m.cpu.system) / 1000);
      }
    };
    proc.on('message', onMsg);
    proc.send('cpu');
  });
}

/** The longest the relay's event loop was blocked since the last reset (ms; monitorEventLoopDelay). */
function loopDelayOf(proc: ChildProcess): Promise<number> {
  return new Promise((res) => {
    const onMsg = (m: { loopDelayMs?: number }) => {
      if (m.loopDelayMs !== undefined) {
        proc.off('message', onMsg);
        res(m.loopDelayMs);
      }
    };
    proc.on('message', onMsg);
    proc.send('loop-delay');
  });
}

export function child(file: string, arg?: unknown): Promise<{ proc: ChildProcess; url: string }> {
  const proc = fork(here(file), arg === undefined ? [] : [JSON.stringify(arg)], {
    // BENCH_CPU_PROF=dir: profile the relays (node --cpu-prof) to see where the time goes.
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.BENCH_CPU_PROF && file.includes('relay')
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
        : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((res, rej) => {
    const onMsg = (m: { url?: string }) => {
      if (m.url) {
        proc.off('message', onMsg);
        res({ proc, url: m.url });
      }
    };
    proc.on('message', onMsg);
    proc.once('exit', (code) => rej(new Error(`${file} exited with ${code}`)));
  });
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export class Receipts {
  readonly at = new Map<string, number>();
  attach(proc: ChildProcess) {
    proc.on('message', (m: { receipts?: [string, number][] }) => {
      for (const [id, t] of m.receipts ?? []) if (!this.at.has(id)) this.at.set(id, t);
    });
  }
  async all(ids: string[], timeoutMs = 120_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let last = 0;
      let missing = 0;
      for (const id of ids) {
        const t = this.at.get(id);
        if (t === undefined) missing++;
        else last = Math.max(last, t);
      }
      if (missing === 0) return last;
      if (Date.now() > deadline)
        throw new Error(`${missing} of ${ids.length} events never reached the target`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const rid = (r: BenchRequest) => r.headers['x-request-uuid']!;

/** The event ids the relays answered with, by request id (for the stage split of BENCH_VERBOSE). */
const eventIds = new Map<string, string>();

async function post(pool: Pool, r: BenchRequest): Promise<number> {
  const res = await pool.request({ path: '/hooks/cloud', method: 'POST', headers: r.headers, body: r.body });
  if (res.statusCode !== 202) {
    await res.body.dump();
    throw new Error(`relay answered ${res.statusCode}`);
  }
  // The answer's id only feeds the stage split: the load generator does no more than it must otherwise.
  if (!process.env.BENCH_VERBOSE) {
    await res.body.dump();
    return Date.now();
  }
  const answer = (await res.body.json()) as { id?: string };
  if (answer.id) eventIds.set(rid(r), answer.id);
  return Date.now();
}

/**
 * hookrelay's steady-phase latency in two stages, from the event's record: 202 → routed (the fan-out's
 * `routedAt`) and routed → the target's receipt. The naive relay has no such stages.
 */
async function stageSplit(
  redis: Redis,
  keys: Keys,
  reqs: BenchRequest[],
  receipts: Receipts,
): Promise<string> {
  const toRouted: number[] = [];
  const toReceipt: number[] = [];
  for (const r of reqs) {
    const id = eventIds.get(rid(r));
    if (!id) continue;
    const [acceptedAt, routedAt] = await redis.hmget(keys.event(id), 'ok', 'routedAt');
    const receipt = receipts.at.get(rid(r));
    if (!acceptedAt || !routedAt || receipt === undefined) continue;
    toRouted.push(Number(routedAt) - Number(acceptedAt));
    toReceipt.push(receipt - Number(routedAt));
  }
  toRouted.sort((a, b) => a - b);
  toReceipt.sort((a, b) => a - b);
  return `202 → routed p50 ${percentile(toRouted, 50)} p99 ${percentile(toRouted, 99)} ms, routed → receipt p50 ${percentile(toReceipt, 50)} p99 ${percentile(toReceipt, 99)} ms`;
}

/** As fast as a fixed number of concurrent senders can go; rate = events / (first send → last receipt). */
async function burst(
  pool: Pool,
  reqs: BenchRequest[],
  receipts: Receipts,
  concurrency: number,
): Promise<number> {
  let next = 0;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < reqs.length) await post(pool, reqs[next++]!);
    }),
  );
  const acked = Date.now();
  const last = await receipts.all(reqs.map(rid));
  if (process.env.BENCH_VERBOSE) {
    console.log(
      `    202s at ${(reqs.length / ((acked - start) / 1000)).toFixed(0)}/s, delivered ${last - acked} ms after the last 202`,
    );
  }
  return reqs.length / ((last - start) / 1000);
}

/** A steady rate; latency = target receipt − the 202 the sender got (never negative). */
async function steady(pool: Pool, reqs: BenchRequest[], receipts: Receipts, rate: number): Promise<number[]> {
  const acked = new Map<string, number>();
  const start = Date.now();
  const sends: Promise<void>[] = [];
  let i = 0;
  while (i < reqs.length) {
    const due = Math.floor(((Date.now() - start) * rate) / 1000) + 1;
    while (i < Math.min(due, reqs.length)) {
      const r = reqs[i++]!;
      sends.push(post(pool, r).then((t) => void acked.set(rid(r), t)));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(sends);
  await receipts.all(reqs.map(rid));
  return reqs.map((r) => Math.max(0, receipts.at.get(rid(r))! - acked.get(rid(r))!)).sort((a, b) => a - b);
}

export async function benchE2E(
  opts: {
    events?: number;
    rate?: number;
    steadySeconds?: number;
    concurrency?: number;
    workerConcurrency?: number;
    /** Naive and hookrelay alternate this many times; medians are reported (the machine is shared and noisy). */
    rounds?: number;
  } = {},
): Promise<E2EResult> {
  const events = opts.events ?? 3000;
  const rate = opts.rate ?? Number(process.env.BENCH_E2E_RATE ?? 500);
  const steadyCount = rate * (opts.steadySeconds ?? 6);
  const warm = 300;
  const concurrency = opts.concurrency ?? 32;
  const workerConcurrency = opts.workerConcurrency ?? 16;
  // Three by default: an odd count has a true median (with two, the lower one picked the worse rate of each
  // relay and the better p99).
  const rounds = opts.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-bench-e2e-'));
  const redis = await startEmbeddedRedis({ dir });
  const redisClient = new Redis(ioredisEndpoint(benchRedisUrl(redis)), { lazyConnect: false });
  const receipts = new Receipts();
  const target = await child('./e2e-target.ts');
  receipts.attach(target.proc);
  const all = makeSignedPushes(MODES.length * rounds * (warm + events + steadyCount), SECRET);
  const out: Partial<E2EResult> = { events, steadyRate: rate, avgBytes: Math.round(averageSize(all)) };
  const runs: Record<Mode, Round[]> = {
    naive: [],
    reference: [],
    hookrelay: [],
  };
  try {
    let offset = 0;
    const modes = Array.from({ length: rounds }, () => MODES).flat();
    for (const mode of modes) {
      const take = (n: number) => {
        const part = all.slice(offset, offset + n);
        offset += n;
        return part;
      };
      const relayArgs = {
        redisUrl: benchRedisUrl(redis),
        targetUrl: `${target.url}/hook`,
        concurrency: workerConcurrency,
        secret: SECRET,
        logLevel: 'info',
        prefix: `bench-${mode}`,
      };
      // BENCH_E2E_SPLIT=1: hookrelay as the compose file runs it, ingress and worker in two processes (CPU per
      // event is both's; the loop delay the ingress's).
      const split = mode === 'hookrelay' && process.env.BENCH_E2E_SPLIT === '1';
      const relay = await child('./e2e-relay.ts', {
        mode,
        ...relayArgs,
        ...(split ? { roles: 'ingress' } : {}),
      });
      const worker = split
        ? await child('./e2e-relay.ts', { mode, ...relayArgs, roles: 'worker' })
        : undefined;
      const procs = [relay.proc, ...(worker ? [worker.proc] : [])];
      const cpuAll = async () => (await Promise.all(procs.map(cpuOf))).reduce((a, b) => a + b, 0);
      const relayKeys = makeKeys(e2eRelayConfig(relayArgs));
      const pool = new Pool(relay.url, { connections: concurrency });
      try {
        await burst(pool, take(warm), receipts, concurrency);
        const cpu0 = await cpuAll();
        const usage0 = await redisUsage(redisClient);
        const r = await burst(pool, take(events), receipts, concurrency);
        relay.proc.send('loop-delay-reset');
        const steadyReqs = take(steadyCount);
        const lat = await steady(pool, steadyReqs, receipts, rate);
        const loopDelay = await loopDelayOf(relay.proc);
        const cpu1 = await cpuAll();
        const usage1 = await redisUsage(redisClient);
        const measured = events + steadyCount;
        const calls = callsBetween(usage0, usage1);
        if (process.env.BENCH_VERBOSE) {
          const split =
            mode === 'hookrelay' ? `; ${await stageSplit(redisClient, relayKeys, steadyReqs, receipts)}` : '';
          console.log(`    ${mode} steady: event loop blocked at most ${loopDelay.toFixed(1)} ms${split}`);
          const top = [...calls].sort((a, b) => b[1] - a[1]).slice(0, 14);
          console.log(
            `    ${mode} redis calls per event: ${top.map(([n, c]) => `${n} ${(c / measured).toFixed(2)}`).join(', ')}`,
          );
        }
        runs[mode].push({
          redisCpuMs: (usage1.cpuMs - usage0.cpuMs) / measured,
          redisCalls: [...calls.values()].reduce((a, b) => a + b, 0) / measured,
          rate: r,
          p50: percentile(lat, 50),
          p99: percentile(lat, 99),
          max: lat[lat.length - 1]!,
          cpuMs: (cpu1 - cpu0) / (events + steadyCount),
        });
      } finally {
        await pool.close();
        for (const proc of procs) proc.kill(process.env.BENCH_CPU_PROF ? 'SIGINT' : 'SIGKILL');
      }
    }
  } finally {
    target.proc.kill('SIGKILL');
    redisClient.disconnect();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  };
  const pick = (mode: Mode, k: keyof Round) => med(runs[mode].map((x) => x[k]));
  Object.assign(out, {
    naiveRate: pick('naive', 'rate'),
    referenceRate: pick('reference', 'rate'),
    referenceP99: pick('reference', 'p99'),
    referenceCpuMs: pick('reference', 'cpuMs'),
    referenceRedisCpuMs: pick('reference', 'redisCpuMs'),
    naiveP50: pick('naive', 'p50'),
    naiveP99: pick('naive', 'p99'),
    hookrelayRate: pick('hookrelay', 'rate'),
    hookrelayP50: pick('hookrelay', 'p50'),
    hookrelayP99: pick('hookrelay', 'p99'),
    hookrelayMax: pick('hookrelay', 'max'),
    naiveCpuMs: pick('naive', 'cpuMs'),
    hookrelayCpuMs: pick('hookrelay', 'cpuMs'),
    naiveRedisCpuMs: pick('naive', 'redisCpuMs'),
    hookrelayRedisCpuMs: pick('hookrelay', 'redisCpuMs'),
    naiveRedisCalls: pick('naive', 'redisCalls'),
    hookrelayRedisCalls: pick('hookrelay', 'redisCalls'),
    rounds: runs,
  });
  out.ratio = out.hookrelayRate! / out.naiveRate!;
  out.ratioToReference = out.hookrelayRate! / out.referenceRate!;
  return out as E2EResult;
}

export function printE2E(r: E2EResult): void {
  const f = (n: number) => n.toFixed(0).padStart(6);
  console.log(
    `end-to-end (${r.events} events, avg ${(r.avgBytes / 1024).toFixed(1)} KB, 202 → target receipt)`,
  );
  console.log(
    `  naive relay   ${f(r.naiveRate)} events/s   p50 ${r.naiveP50} ms  p99 ${r.naiveP99} ms @ ${r.steadyRate}/s`,
  );
  console.log(
    `  reference     ${f(r.referenceRate)} events/s   p99 ${r.referenceP99} ms @ ${r.steadyRate}/s (naive + signature, body hash, parse, outbound signature, log lines)`,
  );
  console.log(
    `  hookrelay     ${f(r.hookrelayRate)} events/s   p50 ${r.hookrelayP50} ms  p99 ${r.hookrelayP99} ms @ ${r.steadyRate}/s (max ${r.hookrelayMax} ms)`,
  );
  console.log(
    `  ratio ${r.ratio.toFixed(2)} × naive (target ≥ 0.9), p99 target ≤ 20 ms  (medians of ${r.rounds.naive.length} alternating rounds)`,
  );
  console.log(
    `  ratio ${r.ratioToReference.toFixed(2)} × the reference; the reference ${(r.referenceRate / r.naiveRate).toFixed(2)} × naive`,
  );
  console.log(
    `  relay CPU per event: naive ${r.naiveCpuMs.toFixed(3)} ms, reference ${r.referenceCpuMs.toFixed(3)} ms, hookrelay ${r.hookrelayCpuMs.toFixed(3)} ms (${(r.hookrelayCpuMs / r.naiveCpuMs).toFixed(2)}× naive, ${(r.hookrelayCpuMs / r.referenceCpuMs).toFixed(2)}× reference)`,
  );
  console.log(
    `  redis-server per event: naive ${r.naiveRedisCpuMs.toFixed(3)} ms CPU, ${r.naiveRedisCalls.toFixed(1)} calls; reference ${r.referenceRedisCpuMs.toFixed(3)} ms CPU; hookrelay ${r.hookrelayRedisCpuMs.toFixed(3)} ms CPU, ${r.hookrelayRedisCalls.toFixed(1)} calls`,
  );
  for (const mode of MODES) {
    console.log(
      `  ${mode.padEnd(9)} rounds: ${r.rounds[mode].map((x) => `${x.rate.toFixed(0)}/s p99 ${x.p99} ms ${x.cpuMs.toFixed(3)} cpu-ms/ev`).join(', ')}`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const events = process.argv[2] ? Number(process.argv[2]) : undefined;
  printE2E(await benchE2E(events ? { events } : {}));
}
