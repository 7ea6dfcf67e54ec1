import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The embedded Redis's data folder (`redis.dataDir`): the AOF, the socket, the redis-server's pid file, the
 * lock and the password. Only the user the relay runs as may enter it (0700): the socket and the password are
 * the keys to every event and admin session in it.
 */
export const DATA_FOLDER_FILES = {
  password: 'redis.password',
  lock: 'hookrelay.lock',
  /** Redis 7's multi-part AOF directory (`appenddirname`'s default). */
  aofDir: 'appendonlydir',
} as const;

/** Creates the folder (0700) or narrows an existing one to 0700, and its AOF files to this user. With the lock held. */
export function prepareDataFolder(dir: string): string {
  const folder = resolve(dir);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  chmodSync(folder, 0o700);
  // The redis-server runs with umask 077 (embedded-redis.ts), so what it writes is this user's only; AOF files
  // written by a relay that did not yet, or copied in by hand, are narrowed here.
  const aofDir = join(folder, DATA_FOLDER_FILES.aofDir);
  if (existsSync(aofDir)) {
    chmodSync(aofDir, 0o700);
    for (const name of readdirSync(aofDir)) chmodSync(join(aofDir, name), 0o600);
  }
  return folder;
}

/**
 * The embedded Redis's `requirepass`: generated once (32 random bytes, hex) into `redis.password` (0600) and
 * read back on every later start, so tools can read it from the folder (`REDISCLI_AUTH=$(cat …)`). Created
 * exclusively (with the lock held), so an existing password is never replaced.
 */
export function embeddedRedisPassword(dir: string): string {
  const file = join(dir, DATA_FOLDER_FILES.password);
  try {
    const fd = openSync(file, 'wx', 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    chmodSync(file, 0o600);
  }
  return readEmbeddedRedisPassword(dir);
}

/** The password of the embedded Redis in `dir`, for tools and tests that connect to it. */
export function readEmbeddedRedisPassword(dir: string): string {
  const password = readFileSync(join(dir, DATA_FOLDER_FILES.password), 'utf8').trim();
  if (!/^[0-9a-f]{32,}$/.test(password))
    throw new Error(
      `${join(dir, DATA_FOLDER_FILES.password)} does not hold a password (hex): remove it to make a new one`,
    );
  return password;
}
