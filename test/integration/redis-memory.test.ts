import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_HASH_LISTPACK_VALUE } from '../../src/queue/embedded-redis.js';
import { deliveryJobId } from '../../src/relay/job-types.js';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useTestRedis } from '../helpers/redis.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

// The embedded redis-server, started with the relay's own arguments (redisServerArgs).
const db = useTestRedis();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('Redis memory: events and delivery jobs stay compact hashes', () => {
  it('the embedded Redis keeps a delivered event and its completed job as listpacks', async () => {
    // Set under the name Redis 6 knows; Redis 7 reads it back under either.
    const [, value] = (await db.inspect.config('GET', 'hash-max-ziplist-value')) as string[];
    expect(value).toBe(String(REDIS_HASH_LISTPACK_VALUE));
    const t: TargetServer = await startTargetServer();
    open.push(t);
    const relay: TestRelay = await startRelay(db.url, [target('ci', t.url)]);
    open.push(relay);
    const res = await send(relay.ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
    expect(res.status).toBe(202);
    const id = String(res.json.id);
    expect((await relay.settled(id, 'ci')).state).toBe('delivered');

    const { keys } = relay.ing.runtime;
    // Every field of the event (compressed body, envelope, headers, the delivery's record) and of the job
    // (data, options, return value) is within the bound: one longer field would turn the hash into a table.
    // `listpack` since Redis 7, `ziplist` before: either way not a hash table.
    const compact = ['listpack', 'ziplist'];
    expect(compact).toContain(await db.inspect.object('ENCODING', keys.event(id)));
    expect(compact).toContain(
      await db.inspect.object('ENCODING', keys.job('ci', deliveryJobId(id, 'ci'), 0)),
    );
  });
});
