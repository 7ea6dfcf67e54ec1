import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import type { LoopbackRedis } from '../src/queue/embedded-redis.js';
import { unixSocketPath } from '../src/queue/redis-connection.js';
import type { BenchRequest } from './payloads.js';

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

/** Spawn a child that prints `{"url": …}` on its first stdout line once it listens. */
export async function spawnServer(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      for (const line of buf.split('\n')) {
        try {
          const parsed = JSON.parse(line);
          if (parsed.url) {
            child.stdout?.off('data', onData);
            child.stdout?.resume();
            resolve({ url: parsed.url, child });
            return;
          }
        } catch {
          // not the ready line
        }
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
}

export async function waitReady(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready`);
}

/** Drive a server with autocannon, cycling through pre-signed requests (one unique request per call). */
export async function load(
  url: string,
  path: string,
  reqs: BenchRequest[],
  seconds: number,
  connections = 16,
): Promise<LoadResult> {
  let i = 0;
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path,
        setupRequest: (req: Record<string, unknown>) => {
          const r = reqs[i++ % reqs.length]!;
          return { ...req, headers: r.headers, body: r.body };
        },
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

export function writeYaml(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

export function fmt(r: LoadResult): string {
  return `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${String(r.p50).padStart(4)} ms  p99 ${String(r.p99).padStart(4)} ms  non-2xx ${r.non2xx}  errors ${r.errors}`;
}

/** CPU seconds (user + system) used so far by the processes `match` picks (by pid, process group). */
export function cpuSeconds(match: (pid: number, pgrp: number) => boolean): number {
  let ticks = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // After "pid (comm) ": state ppid pgrp ... utime(14th field) stime(15th).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (match(Number(name), Number(f[2]))) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // The process ended while we looked.
    }
  }
  return ticks / 100;
}

/**
 * How a bench reaches its Redis, the same for every contender in it: the Unix socket, as `hookrelay start` does
 * with its own redis-server, or loopback TCP with BENCH_REDIS=tcp (a Redis on another host is reached so).
 */
export function benchRedisUrl(redis: LoopbackRedis): string {
  return process.env.BENCH_REDIS === 'tcp' || !redis.socketUrl ? redis.url : redis.socketUrl;
}

/** That endpoint as ioredis' constructor takes it: a socket path, or the redis:// URL. */
export function ioredisEndpoint(url: string): string {
  return unixSocketPath(url) ?? url;
}
