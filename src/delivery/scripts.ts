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
  replies: 'strings' | 'buffers' = 'strings',
): (keys: string[], args: (string | number)[]) => Promise<unknown> {
  const client = redis as Scripted;
  if (typeof client[name] !== 'function') redis.defineCommand(name, { lua });
  // ioredis defines `<name>Buffer` beside each command: bulk replies as Buffers (binary bodies), numbers as is.
  const command = replies === 'buffers' ? `${name}Buffer` : name;
  return (keys, args) => client[command]!(keys.length, ...keys, ...args);
}
