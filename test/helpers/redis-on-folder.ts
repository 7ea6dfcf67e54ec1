import { readdirSync } from 'node:fs';
import { isRedisServerOn } from '../../src/queue/leftover-redis.js';

/** The pids of every redis-server on this machine whose working directory is `dir` (it chdirs to its --dir). */
export function redisServersOn(dir: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => isRedisServerOn(pid, dir));
}
