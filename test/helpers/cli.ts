import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const BIN = resolve(import.meta.dirname, '../../bin/hookrelay.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real, built CLI (`npm run build` first) as a child process; `input` goes to its standard input. */
export function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
  input?: string,
): Promise<CliResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`hookrelay ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

/** A long-running role (`hookrelay admin …`); resolves with the URL it logs once listening. */
export function startCliServer(
  args: string[],
  logMessage: string,
  env: Record<string, string | undefined> = {},
  timeoutMs = 30_000,
): Promise<{ url: string; child: ChildProcess; output: () => string; stop(): Promise<void> }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`no "${logMessage}" within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.stderr.on('data', (c) => (out += c));
    child.stdout.on('data', (c) => {
      out += c;
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const j = JSON.parse(line) as { msg?: string; url?: string };
          if (j.msg === logMessage && j.url) {
            clearTimeout(timer);
            res({ url: j.url, child, output: () => out, stop });
            return;
          }
        } catch {
          // partial line
        }
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited with ${code} before listening:\n${out}`));
    });
  });
}
