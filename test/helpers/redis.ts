import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedRedis, startEmbeddedRedis } from '../../src/queue/embedded-redis.js';

/** A real redis-server on a free loopback port with its own data dir: never the machine's 6379. */
export async function startTestRedis(
  args: string[] = [],
): Promise<EmbeddedRedis & { cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'hookrelay-redis-'));
  const redis = await startEmbeddedRedis({ dir, args });
  return {
    ...redis,
    async cleanup() {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
