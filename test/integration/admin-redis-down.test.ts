import { expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createRuntime, waitForRedis } from '../../src/runtime.js';
import { startAdmin } from '../helpers/admin.js';
import { testConfig } from '../helpers/config.js';
import { startTestRedis } from '../helpers/redis.js';

const TOKEN = 'viewer-token-0123456789abcdef';

it('admin API answers 503 QUEUE_UNAVAILABLE with Retry-After while Redis is down, not 500', async () => {
  const local = await startTestRedis();
  const config = testConfig(local.url, { admin: { tokens: [{ name: 'v', token: TOKEN, role: 'viewer' }] } });
  const runtime = await createRuntime(config, createLogger('silent'));
  await waitForRedis(runtime.redis, 5000);
  const admin = await startAdmin(runtime);
  const get = (path: string) =>
    fetch(`${admin.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  try {
    expect((await get('/api/events')).status).toBe(200);
    const before = await (await get('/metrics')).text();
    expect(before).toMatch(/^hookrelay_redis_up 1$/m);
    expect(Number(/^hookrelay_redis_memory_used_bytes (\d+)$/m.exec(before)?.[1])).toBeGreaterThan(100_000);
    expect(before).toMatch(/^hookrelay_queue_jobs\{target="ci",state="waiting"\} 0$/m);
    await local.stop();
    for (const path of [
      '/api/events',
      '/api/dead-letters',
      '/api/events/0190a0a0-0000-7000-8000-000000000000',
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(await res.json()).toMatchObject({ error: 'QUEUE_UNAVAILABLE' });
    }
    // Metrics still answer, so the alert on Redis being away can fire; the Redis-read gauges go quiet.
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^hookrelay_redis_up 0$/m);
    expect(text).not.toMatch(/^hookrelay_queue_jobs\{/m);
  } finally {
    await admin.close();
    await runtime.close();
    await local.cleanup();
  }
});
