import type { RedisClient } from '../queue/redis-connection.js';

type Scripted = RedisClient & Record<string, (...args: (string | number)[]) => Promise<unknown>>;

/**
 * A Lua script sent by its SHA (EVALSHA, loaded on first use) instead of its text on every call: the delivery
 * path runs several per job, and re-sending and re-hashing the text costs both sides CPU.
 */
export function luaScript(
  redis: RedisClient,
  name: string,
  lua: string,
): (keys: string[], args: (string | number)[]) => Promise<unknown> {
  const client = redis as Scripted;
  if (typeof client[name] !== 'function') redis.defineCommand(name, { lua });
  return (keys, args) => client[name]!(keys.length, ...keys, ...args);
}
