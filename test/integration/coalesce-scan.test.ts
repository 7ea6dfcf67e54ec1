import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Coalescer, UNROUTED_HOLD_MS } from '../../src/delivery/coalesce.js';
import { startFanOut } from '../../src/fanout/fan-out.js';
import { StaticLoopRules } from '../../src/relay/loop-rules.js';
import { cloudPush } from '../fixtures/payloads.js';
import { accept } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';

const db = useTestRedis();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const hash = () => randomBytes(20).toString('hex');

describe('coalescing catches up on pushes the fan-out has not routed yet', () => {
  it('a newer push scanned while still `received` supersedes an older one once it is routed', async () => {
    const config = testConfig(db.url, {
      routes: [{ source: 'cloud', targets: ['ci'], coalesce: 'latest-per-ref' }],
    });
    const ing = await startIngress(config, captureLogs().log, { fanOut: false });
    closers.push(() => ing.close());
    const { runtime } = ing;
    const routeAll = async (ids: string[]) => {
      const fanOut = startFanOut(runtime, { blockMs: 100 });
      try {
        for (const id of ids) await routed(ing, id);
      } finally {
        await fanOut.close();
      }
    };
    const middle = hash();
    const older = await accept(ing.url, 'cloud', 'repo:push', cloudPush({ newHash: middle }));
    await routeAll([older]);
    // The branch moves on; the ingress has this push, the fan-out has not run yet.
    const newer = await accept(
      ing.url,
      'cloud',
      'repo:push',
      cloudPush({ oldHash: middle, newHash: hash() }),
    );

    const coalescer = new Coalescer(
      runtime.redis,
      runtime.keys,
      config,
      runtime.router,
      new StaticLoopRules(config.loop),
    );
    const olderEvent = (await runtime.store.read(older))!;
    // Nothing newer is known yet: the older push is the branch's latest for now.
    expect(await coalescer.supersededBy('ci', olderEvent)).toBeNull();

    await routeAll([newer]);
    expect(await coalescer.supersededBy('ci', olderEvent)).toBe(newer);
  });

  it('an event stuck in `received` past the hold no longer keeps the cursor behind it', async () => {
    const config = testConfig(db.url, {
      routes: [{ source: 'cloud', targets: ['ci'], coalesce: 'latest-per-ref' }],
    });
    const ing = await startIngress(config, captureLogs().log);
    closers.push(() => ing.close());
    const { runtime } = ing;
    const { keys } = runtime;
    const now = Date.now();
    // The cursor has been held since before an event that never got routed (its record unreadable, say).
    await db.inspect.set(keys.coalesceCursor(0), now - 3 * UNROUTED_HOLD_MS);
    const stuck = '0190a0a0-0000-7000-8000-000000000000';
    await db.inspect.hset(keys.event(stuck), 'state', 'received');
    await db.inspect.zadd(keys.eventIndexOf(0), now - 2 * UNROUTED_HOLD_MS, stuck);
    const id = await accept(ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    await routed(ing, id);
    const event = (await runtime.store.read(id))!;

    const coalescer = new Coalescer(
      runtime.redis,
      keys,
      config,
      runtime.router,
      new StaticLoopRules(config.loop),
    );
    expect(await coalescer.supersededBy('ci', event)).toBeNull();
    expect(Number(await db.inspect.get(keys.coalesceCursor(0)))).toBeGreaterThanOrEqual(event.receivedAt);
  });
});
