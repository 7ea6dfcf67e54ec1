import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEmbeddedRedisPassword } from '../../src/queue/data-folder.js';
import { freePort, type Proc, spawnTracked, stopAll, waitFor } from '../edge/helpers/processes.js';
import { REPO, type RelayProc, requireBuild, startIngressProc } from '../edge/helpers/stack.js';
import { redisServersOn } from '../helpers/redis-on-folder.js';
import { type Driver, startDriver } from './helpers/driver.js';
import { type IdempotentTarget, startIdempotentTarget } from './helpers/idempotent-target.js';
import { inspector, printReport, verifyRun, writeFaultConfig } from './helpers/relay.js';

/*
 * `hookrelay start` with the embedded Redis (no redis.url), crashed under a stream of signed webhooks: the
 * relay SIGKILLed twice in a row, then its redis-server SIGKILLed, then both at once. After each crash its redis-server must be
 * gone within a moment (the watchdog, or the relay stopping itself), the AOF must pass redis-check-aof, and the
 * next start must run exactly one redis-server on the folder and say how the last run ended. At the end every
 * acknowledged event must have reached the target.
 */

const TARGETS = ['ci'];
const PREFIX = 'fembedded';
// `hookrelay start` loads every role; on a loaded 2-core machine that has taken most of a minute.
const READY_MS = 90_000;
/** More than any one command the relay appends: a body is at most `ingress.bodyLimit` (1 MiB) with its headers. */
const MAX_COMMAND_BYTES = 2 * 1024 * 1024;

let dir: string;
let data: string;
let configFile: string;
let port: number;
let target: IdempotentTarget;
let relay: RelayProc;
let inspect: Redis | undefined;

function startRelay(name: string): Promise<RelayProc> {
  return startIngressProc(name, configFile, port, { command: 'start', readyTimeoutMs: READY_MS });
}

function startedLine(p: Proc): Record<string, unknown> | undefined {
  return p.json().find((line) => line.msg === 'embedded redis-server started');
}

/** redis-check-aof on the multi-part AOF's manifest: exit 0 and "is valid" when every part is intact. */
function checkAof(): { ok: boolean; cutShortAtEnd: boolean; output: string } {
  const run = spawnSync('redis-check-aof', [join(data, 'appendonlydir', 'appendonly.aof.manifest')], {
    encoding: 'utf8',
  });
  const output = `${run.stdout}${run.stderr}`;
  return { ok: run.status === 0 && /is valid/.test(output), cutShortAtEnd: cutShortAtEnd(output), output };
}

/**
 * Whether the AOF's only fault is its last command cut short. A redis-server SIGKILLed while appending leaves
 * that: Linux stops a write to a file part-way at a fatal signal. Redis loads such a file (aof-load-truncated,
 * its default) by truncating that command, which no client had an answer for; it refuses any other fault, so
 * the restart that follows is the decisive check. Here: only the last file is short, by less than one command.
 */
function cutShortAtEnd(output: string): boolean {
  const files = [
    ...output.matchAll(
      /AOF analyzed: filename=(\S+), size=\d+, ok_up_to=\d+, ok_up_to_line=\d+, diff=(\d+)/g,
    ),
  ];
  const short = files.filter((file) => file[2] !== '0');
  return short.length === 1 && short[0] === files.at(-1) && Number(short[0]![2]) < MAX_COMMAND_BYTES;
}

beforeAll(async () => {
  requireBuild();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-fault-embedded-'));
  data = join(dir, 'data');
  target = await startIdempotentTarget();
  port = await freePort();
  configFile = writeFaultConfig(
    {
      dir,
      redis: { dataDir: data },
      prefix: PREFIX,
      targetUrl: target.url,
      targets: TARGETS,
      admin: { host: '127.0.0.1', port: 0 },
    },
    'relay',
    port,
  );
  relay = await startRelay('relay-0');
}, READY_MS + 10_000);

afterAll(async () => {
  inspect?.disconnect();
  await stopAll();
  await target?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Crash {
  kill: 'relay' | 'redis-server' | 'both';
  relayExit: { code: number | null; signal: NodeJS.Signals | null };
  settledMs: number;
  aofValid: boolean;
  aofCutShort: boolean;
  previousRun: unknown;
  redisServersAfterStart: number;
}

/** Waits for 100 more acknowledgements, crashes one process, checks what is left, and starts the relay again. */
async function crashAndRestart(driver: Driver, kill: Crash['kill'], round: number): Promise<Crash> {
  const acked = driver.ackedCount();
  await waitFor('100 more acknowledged webhooks', () => driver.ackedCount() >= acked + 100, 60_000, 20);
  const killedAt = Date.now();
  if (kill !== 'relay') {
    const servers = redisServersOn(data);
    expect(servers).toHaveLength(1);
    process.kill(servers[0]!, 'SIGKILL');
  }
  // The relay alone (its own process group): its redis-server and lock holder are in groups of their own.
  if (kill !== 'redis-server') relay.kill('SIGKILL');
  const relayExit = await relay.exited;
  await waitFor('no redis-server left on the folder', () => redisServersOn(data).length === 0, 15_000, 20);
  const settledMs = Date.now() - killedAt;
  const aof = checkAof();
  // A relay killed alone leaves its redis-server to stop cleanly: the file is whole. A killed redis-server may
  // have been appending.
  if (kill === 'relay') expect(aof.ok, aof.output).toBe(true);
  else expect(aof.ok || aof.cutShortAtEnd, aof.output).toBe(true);
  relay = await startRelay(`relay-${round}`);
  const servers = redisServersOn(data);
  expect(servers).toHaveLength(1);
  const started = startedLine(relay);
  expect(started?.pid).toBe(servers[0]);
  return {
    kill,
    relayExit,
    settledMs,
    aofValid: aof.ok,
    aofCutShort: aof.cutShortAtEnd,
    previousRun: started?.previousRun,
    redisServersAfterStart: servers.length,
  };
}

describe('fault: hookrelay start with the embedded Redis, crashed', () => {
  it('loses nothing acknowledged; one redis-server per folder after every crash; the AOF intact', {
    timeout: 600_000,
  }, async () => {
    expect(startedLine(relay)?.previousRun).toBe('clean');
    const driver = startDriver({ urls: () => [relay.url!], concurrency: 4, pauseMs: 5 });
    const crashes: Crash[] = [];
    try {
      crashes.push(await crashAndRestart(driver, 'relay', 1));
      crashes.push(await crashAndRestart(driver, 'relay', 2));
      crashes.push(await crashAndRestart(driver, 'redis-server', 3));
      crashes.push(await crashAndRestart(driver, 'both', 4));
      const acked = driver.ackedCount();
      await waitFor('100 more acknowledged webhooks', () => driver.ackedCount() >= acked + 100, 60_000, 20);
    } finally {
      await driver.stop();
    }

    inspect = inspector({ path: join(data, 'redis.sock'), password: readEmbeddedRedisPassword(data) });
    const run = await verifyRun({
      stats: driver.stats,
      target,
      targets: TARGETS,
      redis: inspect,
      prefix: PREFIX,
      timeoutMs: 120_000,
    });
    inspect.disconnect();
    inspect = undefined;

    relay.kill('SIGTERM');
    const cleanExit = await relay.exited;
    const finalAof = checkAof();
    printReport('embedded-crash', { ...run.report, crashes, cleanExit, finalAofValid: finalAof.ok });

    expect(run.missing).toEqual([]);
    expect(run.notIndexed).toEqual([]);
    expect(run.mismatched).toEqual([]);
    expect(crashes.map((c) => c.previousRun)).toEqual([
      'relay-died',
      'relay-died',
      'redis-died',
      'both-died',
    ]);
    // SIGKILLed relays die by the signal; one whose redis-server was killed stops itself and exits 1.
    expect(crashes.map((c) => c.relayExit.signal ?? c.relayExit.code)).toEqual([
      'SIGKILL',
      'SIGKILL',
      1,
      'SIGKILL',
    ]);
    expect(cleanExit.code).toBe(0);
    expect(redisServersOn(data)).toEqual([]);
    expect(finalAof.ok, finalAof.output).toBe(true);
  });

  it('a relay killed during its start-up or its shutdown leaves nothing that stops the next start', {
    timeout: 400_000,
  }, async () => {
    // During start-up: right after the redis-server started, before the ingress listens.
    const starting = spawnTracked('relay-starting', process.execPath, [
      join(REPO, 'bin', 'hookrelay.js'),
      'start',
      '--config',
      configFile,
    ]);
    await waitFor('the embedded redis-server to start', () => startedLine(starting), READY_MS, 10);
    starting.kill('SIGKILL');
    await starting.exited;
    await waitFor('no redis-server left on the folder', () => redisServersOn(data).length === 0, 15_000, 20);
    expect(checkAof().ok).toBe(true);

    relay = await startRelay('relay-after-start-up-kill');
    expect(redisServersOn(data)).toHaveLength(1);
    expect(startedLine(relay)?.previousRun).toBe('relay-died');

    // During shutdown: SIGTERM, then SIGKILL as soon as it says it is shutting down.
    relay.kill('SIGTERM');
    await waitFor(
      'the relay to begin its shutdown',
      () => relay.json().some((l) => l.msg === 'shutting down'),
      30_000,
      5,
    );
    relay.kill('SIGKILL');
    await relay.exited;
    await waitFor('no redis-server left on the folder', () => redisServersOn(data).length === 0, 15_000, 20);
    expect(checkAof().ok).toBe(true);

    relay = await startRelay('relay-after-shutdown-kill');
    expect(redisServersOn(data)).toHaveLength(1);
    // The shutdown may have finished (and released the lock) before the SIGKILL landed.
    expect(['relay-died', 'clean']).toContain(startedLine(relay)?.previousRun);
    const ready = await fetch(`${relay.url}/readyz`);
    expect(ready.status).toBe(200);
  });
});
