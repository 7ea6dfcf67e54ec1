import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Child processes of the edge tests and the edge bench: each in its own process group (detached), so a kill
 * reaches whatever it forked (HAProxy's master and its worker), and tracked, so stopAll() ends exactly the
 * processes this file started — never anything else on the machine.
 */

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** stdout and stderr lines so far, in arrival order. */
  lines: string[];
  /** stdout lines that parse as JSON objects (pino). */
  json(): Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
  output(): string;
  kill(signal?: NodeJS.Signals): void;
}

const tracked = new Set<Proc>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

// Last resort if the test process itself ends without afterAll (vitest worker killed, uncaught error).
process.once('exit', () => {
  for (const p of tracked) if (p.isRunning()) killGroup(p.pid, 'SIGKILL');
});

export function spawnTracked(
  name: string,
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {},
): Proc {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    // quiet: stdout (access logs, one JSON line per webhook) goes to /dev/null — the bench must not spend
    // its own CPU reading it. The child still formats and writes every line, as in production.
    stdio: ['ignore', opts.quiet ? 'ignore' : 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`);
  const lines: string[] = [];
  const jsonLines: Record<string, unknown>[] = [];
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal });
    });
    child.once('error', () => {
      running = false;
      resolve({ code: null, signal: null });
    });
  });
  const collect = (stream: NodeJS.ReadableStream | null, parse: boolean) => {
    let rest = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        if (!line) continue;
        lines.push(line);
        if (parse && line.startsWith('{')) {
          try {
            jsonLines.push(JSON.parse(line));
          } catch {
            // Not a pino line.
          }
        }
      }
    });
  };
  collect(child.stdout, true);
  collect(child.stderr, false);
  const proc: Proc = {
    name,
    child,
    pid: child.pid,
    lines,
    json: () => jsonLines,
    exited,
    isRunning: () => running,
    output: () => lines.slice(-40).join('\n'),
    kill(signal = 'SIGKILL') {
      killGroup(child.pid!, signal);
    },
  };
  tracked.add(proc);
  void exited.then(() => tracked.delete(proc));
  return proc;
}

/** SIGTERM every tracked process group, SIGKILL what is still there after graceMs. */
export async function stopAll(graceMs = 3000): Promise<void> {
  const all = [...tracked];
  for (const p of all) if (p.isRunning()) killGroup(p.pid, 'SIGTERM');
  await Promise.race([Promise.all(all.map((p) => p.exited)), sleep(graceMs)]);
  for (const p of all) killGroup(p.pid, 'SIGKILL');
  await Promise.race([Promise.all(all.map((p) => p.exited)), sleep(1000)]);
}

export async function stopOne(p: Proc, graceMs = 3000): Promise<void> {
  if (!p.isRunning()) return;
  p.kill('SIGTERM');
  await Promise.race([p.exited, sleep(graceMs)]);
  p.kill('SIGKILL');
  await p.exited;
}

/** A free TCP port on 127.0.0.1 (bound and released; the kernel does not hand it out again right away). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Poll until fn returns a truthy value (or throw its last error / a timeout naming what was awaited). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const why = lastErr instanceof Error ? ` (last error: ${lastErr.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * The real haproxy binary, or a failure that says what to do. The edge tests never skip: CI installs HAProxy
 * (.ci/run), and a silently skipped edge suite would hide a broken edge.
 */
export function requireBinary(bin: string, versionArgs: string[], hint: string): string {
  const r = spawnSync(bin, versionArgs, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error ? (r.error as NodeJS.ErrnoException).code : `exit ${r.status}: ${r.stderr}`;
    throw new Error(`${bin} is required by the edge tests but could not run (${why}). ${hint}`);
  }
  return `${r.stdout}${r.stderr}`.split('\n')[0] ?? '';
}
