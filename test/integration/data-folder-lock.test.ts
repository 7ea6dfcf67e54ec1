import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataFolderInUse, lockDataFolder } from '../../src/queue/data-folder-lock.js';

// The data folder's lock against real flock(1) children and a real process that dies holding it.

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-lock-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Another Node process that takes the lock, says so, and waits to be killed. */
function holderProcess(folder: string): Promise<{ pid: number; kill(): Promise<void> }> {
  const lockModule = new URL('../../src/queue/data-folder-lock.ts', import.meta.url).pathname;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { lockDataFolder } = await import(${JSON.stringify(lockModule)});
       await lockDataFolder(${JSON.stringify(folder)});
       console.log('held');
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((res, rej) => {
    child.stdout.once('data', () =>
      res({
        pid: child.pid!,
        kill: () =>
          new Promise((done) => {
            child.once('exit', () => done());
            child.kill('SIGKILL');
          }),
      }),
    );
    child.once('exit', (code) => rej(new Error(`holder exited with ${code}`)));
  });
}

describe('the data folder lock', () => {
  it('refuses a second holder, naming the first; after a release the next one finds no dead holder', async () => {
    const first = await lockDataFolder(dir);
    const refused = await lockDataFolder(dir).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(DataFolderInUse);
    expect((refused as DataFolderInUse).holder?.pid).toBe(process.pid);
    await first.release();
    expect(readFileSync(join(dir, 'hookrelay.lock'), 'utf8')).toBe('');
    const next = await lockDataFolder(dir);
    expect(next.previousHolder).toBeUndefined();
    await next.release();
  });

  it('is freed when its holder is SIGKILLed, and the next holder learns who died holding it', async () => {
    const holder = await holderProcess(dir);
    const refused = await lockDataFolder(dir).catch((err: unknown) => err);
    expect((refused as DataFolderInUse).holder?.pid).toBe(holder.pid);
    await holder.kill();
    // The flock child follows its relay a moment later (EOF on its stdin).
    let next: Awaited<ReturnType<typeof lockDataFolder>> | undefined;
    const deadline = Date.now() + 10_000;
    while (!next) {
      next = await lockDataFolder(dir).catch((err: unknown) => {
        if (!(err instanceof DataFolderInUse) || Date.now() > deadline) throw err;
        return undefined;
      });
      if (!next) await new Promise((r) => setTimeout(r, 20));
    }
    expect(next.previousHolder?.pid).toBe(holder.pid);
    await next.release();
  });

  it('reports a failure of flock itself as that, not as a folder in use', async () => {
    const failed = await lockDataFolder(join(dir, 'missing')).catch((err: unknown) => err);
    expect(failed).not.toBeInstanceOf(DataFolderInUse);
    expect((failed as Error).message).toMatch(/flock on .*missing.* failed: .*No such file or directory/);
  });
});
