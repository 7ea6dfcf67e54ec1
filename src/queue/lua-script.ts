import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

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
