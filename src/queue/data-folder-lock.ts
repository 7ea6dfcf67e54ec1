import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DATA_FOLDER_FILES } from './data-folder.js';

/** Another relay holds the data folder: a second `hookrelay start` on it must not touch anything there. */
export class DataFolderInUse extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
  ) {
    const who = holder
      ? `hookrelay pid ${holder.pid} on ${holder.host}, started ${holder.startedAt}`
      : 'another hookrelay that is still starting';
    super(
      `the data folder ${dir} is in use by ${who}. Stop that relay first, or give this one another ` +
        'redis.dataDir (or a redis.url).',
    );
  }
}

export class FlockMissing extends Error {
  constructor() {
    super(
      'flock is not on PATH: `hookrelay start` with the embedded Redis locks its data folder with it. Install ' +
        'util-linux (Debian/Ubuntu: part of the base system; macOS: `brew install flock`).',
    );
  }
}

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface DataFolderLock {
  /** Who held the lock before and never released it (it died), if anyone. */
  previousHolder?: LockHolder;
  /** Resolves if the lock is lost while held (its holder process was killed): the relay must stop. */
  lost: Promise<void>;
  release(): Promise<void>;
}

/** flock's exit status when another process holds the lock (EX_TEMPFAIL), told apart from its errors. */
const HELD_ELSEWHERE = 75;

function readHolder(file: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return Number.isInteger(holder.pid) ? holder : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock on the data folder for this process's life: an flock(2) on `hookrelay.lock`, held by a
 * small `flock` (util-linux) child that waits for EOF on its stdin. Node has no flock of its own. The kernel
 * drops an flock when the last process holding it dies, so no crash leaves a stale lock behind, no pid can be
 * mistaken for another after reuse, and no two starts can both win a race for a stale one — all of which a
 * pid file must guess at. The child dies with the relay (its stdin is a pipe only the relay holds: any death
 * closes it), and it is started in its own process group so a Ctrl-C reaches only the relay, which releases
 * the lock last. flock also works across PID namespaces (two containers on one volume), where a pid means
 * nothing.
 *
 * The file itself is never removed (removing a lock file races with the next locker); it says who holds it:
 * this process's pid while held, and nothing once released cleanly — a holder still named there when the lock
 * is free died without releasing it.
 */
export async function lockDataFolder(dir: string): Promise<DataFolderLock> {
  const file = join(dir, DATA_FOLDER_FILES.lock);
  let holder: ChildProcess;
  let stderr = '';
  const locked = await new Promise<boolean>((res, rej) => {
    holder = spawn(
      'flock',
      [
        '--exclusive',
        '--nonblock',
        '--conflict-exit-code',
        String(HELD_ELSEWHERE),
        file,
        'sh',
        '-c',
        'echo locked && exec cat >/dev/null',
      ],
      { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    holder.once('error', (err: NodeJS.ErrnoException) =>
      rej(err.code === 'ENOENT' ? new FlockMissing() : err),
    );
    holder.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    holder.stdout?.once('data', () => res(true));
    holder.once('exit', (code) =>
      code === HELD_ELSEWHERE ? res(false) : rej(new Error(`flock on ${file} failed: ${stderr.trim()}`)),
    );
  });
  if (!locked) throw new DataFolderInUse(dir, await namedHolder(file));
  const child = holder!;
  child.stdout?.destroy();
  child.stderr?.destroy();
  const previousHolder = readHolder(file);
  const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  writeFileSync(file, `${JSON.stringify(me)}\n`);
  chmodSync(file, 0o600);
  let releasing = false;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  // An exit the relay chose (process.exit after a shutdown that took too long) lets go of the lock too — the
  // kernel drops it with the process — and is no crash: the holder's name goes with it. Only a death without
  // an exit (a signal, the OOM killer) leaves the name behind.
  const forget = () => writeFileSync(file, '');
  process.once('exit', forget);
  return {
    ...(previousHolder ? { previousHolder } : {}),
    lost: exited.then(() => {
      if (releasing) return new Promise<void>(() => {});
    }),
    async release() {
      releasing = true;
      process.off('exit', forget);
      forget();
      child.stdin?.end();
      await exited;
    },
  };
}

/** The holder named in the file; a relay that has just taken the lock writes its name a moment later. */
async function namedHolder(file: string): Promise<LockHolder | undefined> {
  for (let tries = 0; tries < 20; tries++) {
    const holder = readHolder(file);
    if (holder) return holder;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}
