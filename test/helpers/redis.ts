import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type LoopbackRedis, startEmbeddedRedis } from '../../src/queue/embedded-redis.js';

/** A real redis-server on a free loopback port with its own data dir: never the machine's 6379. */
export async function startTestRedis(
  args: string[] = [],
): Promise<LoopbackRedis & { cleanup(): Promise<void> }> {
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

/**
 * A test file's own redis-server and one client to look into it, started before the file's tests and stopped
 * after them.
 */
export function useTestRedis(args: string[] = []): { readonly url: string; readonly inspect: Redis } {
  let server: Awaited<ReturnType<typeof startTestRedis>> | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startTestRedis(args);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.cleanup();
  });
  return {
    get url() {
      return server!.url;
    },
    // Opened on first use: most files only need the URL.
    get inspect() {
      client ??= new Redis(server!.url);
      return client;
    },
  };
}
