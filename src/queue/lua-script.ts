import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from './redis-connection.js';

/**
 * Where the `.lua` files are: `src/lua/` beside `src/queue/` when run from the sources (tsx, vitest), and
 * `dist/src/lua/` in the built package (the build copies them there: `npm run build`).
 */
const LUA_DIR = new URL('../lua/', import.meta.url);

/** `--- @include "includes/name"` on a line of its own (as in BullMQ's scripts): that file's text, once. */
const INCLUDE = /^--- @include "([\w/-]+)"$/gm;

function readLua(name: string, included: Set<string>): string {
  const text = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
  return text.replace(INCLUDE, (_line, include: string) => {
    if (included.has(include)) return '';
    included.add(include);
    return readLua(include, included);
  });
}

/**
 * ioredis defines a `…Buffer` variant of every command (bulk replies as Buffers) but types few of them. Not
 * `callBuffer('evalsha', …)`: under auto-pipelining ioredis drops the command name of `callBuffer`.
 */
type ScriptArgs = (string | number | Buffer)[];
interface BufferScripting {
  evalshaBuffer(sha: string, numberOfKeys: number, ...keysAndArgs: ScriptArgs): Promise<unknown>;
  evalBuffer(lua: string, numberOfKeys: number, ...keysAndArgs: ScriptArgs): Promise<unknown>;
}

/**
 * A Lua script run by its SHA: the one way the relay runs its scripts. Nothing is defined on the connection
 * (unlike ioredis defineCommand), so any connection can run it, including those the ingress and the admin API
 * share with BullMQ. The text is sent on a client's first call (EVAL caches it, as ioredis does: no NOSCRIPT
 * round trip on a fresh server), the SHA after that, and the text again only when Redis answers NOSCRIPT
 * (after a restart or a failover emptied its script cache).
 */
export class LuaScript {
  readonly sha: string;
  /** The clients this script has been sent to as text. */
  private readonly sentTo = new WeakSet<RedisClient>();

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /**
   * The script in `src/lua/<name>.lua`, its includes inlined. Reads the file: make scripts once, at module
   * load, not per call.
   */
  static fromFile(name: string): LuaScript {
    return new LuaScript(readLua(name, new Set()));
  }

  /** Bulk replies as strings. */
  async run(client: RedisClient, keys: string[], args: ScriptArgs): Promise<unknown> {
    if (this.firstCallOn(client)) return client.eval(this.lua, keys.length, ...keys, ...args);
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }

  /** Bulk replies as Buffers (binary values such as compressed bodies); numbers as they are. */
  async runBuffer(client: RedisClient, keys: string[], args: ScriptArgs): Promise<unknown> {
    const scripting = client as RedisClient & BufferScripting;
    if (this.firstCallOn(client)) return scripting.evalBuffer(this.lua, keys.length, ...keys, ...args);
    try {
      return await scripting.evalshaBuffer(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return scripting.evalBuffer(this.lua, keys.length, ...keys, ...args);
    }
  }

  private firstCallOn(client: RedisClient): boolean {
    if (this.sentTo.has(client)) return false;
    this.sentTo.add(client);
    return true;
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
