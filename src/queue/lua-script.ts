import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

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
 * A Lua script run by its SHA. ioredis' own script commands remember per socket whether a script is loaded,
 * but inside a pipeline — and auto-pipelining puts every producer command in one — that memory is lost, so each
 * call re-sends the whole script text (BullMQ's addStandardJob is ~10 KB) and Redis re-hashes it. Measured on
 * the ingress, that was most of its Redis client cost. Here the SHA is sent, and the text only when Redis
 * answers NOSCRIPT (after a restart or a failover emptied its script cache).
 */
export class LuaScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** The script in `src/lua/<name>.lua`, its includes inlined. Reads the file: make scripts once, at load. */
  static fromFile(name: string): LuaScript {
    return new LuaScript(readLua(name, new Set()));
  }

  async run(client: Redis, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
