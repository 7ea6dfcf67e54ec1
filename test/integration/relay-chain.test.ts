import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { startRelay, target } from '../helpers/delivery.js';
import { newHash } from '../helpers/reactive-ci.js';
import { startTestRedis, useTestRedis } from '../helpers/redis.js';
import { startTargetServer } from '../helpers/target-server.js';

/*
 * Two deployments on default settings, each with its own Redis, each delivering to the other's ingress (a
 * relay chain, A → B → A). Each generates its own relay id, so B takes A's delivery like any webhook; A
 * refuses B's (its own id is in the hop list) with 508, and B dead-letters that at once.
 */

const db = useTestRedis();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'keep-alive', 'transfer-encoding']);

describe('relay chains with default relay ids', () => {
  it('two deployments deliver to each other; the hop back to the first is refused with 508 and dead-lettered at once', async () => {
    const otherRedis = await startTestRedis();
    open.push({ close: () => otherRedis.cleanup() });
    // B's target is A's ingress, behind a plain HTTP forwarder (A's port is known only once A listens).
    let upstream = '';
    const forwarder = await startTargetServer(async (req) => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([name]) => !HOP_BY_HOP.has(name)) as [string, string][],
      );
      const res = await fetch(`${upstream}${req.url}`, { method: 'POST', headers, body: req.body });
      return { status: res.status, body: await res.text() };
    });
    open.push(forwarder);
    const b = await startRelay(otherRedis.url, [
      target('relay-a', `${forwarder.url}/hooks/cloud`, { circuit: { failureThreshold: 1 } }),
    ]);
    open.push(b);
    const a = await startRelay(db.url, [target('relay-b', `${b.ing.url}/hooks/cloud`)]);
    open.push(a);
    upstream = a.ing.url;

    const res = await send(a.ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ newHash: newHash() })));
    expect(res.status).toBe(202);
    const atA = String(res.json.id);
    expect(await a.settled(atA, 'relay-b')).toMatchObject({
      state: 'delivered',
      attempts: [{ status: 202 }],
    });

    const [idA, idB] = await Promise.all([a.ing.runtime.relayId.get(), b.ing.runtime.relayId.get()]);
    expect(idA).not.toBe(idB);
    const queueB = b.ing.runtime.queues.get('relay-a')!;
    const atB = await (async () => {
      for (let i = 0; i < 200; i++) {
        const [job] = await queueB.getJobs(['completed', 'failed', 'active', 'waiting', 'delayed']);
        if (job) return job.data.eventId;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('relay B never queued the chained delivery');
    })();
    const dead = await b.settled(atB, 'relay-a');
    expect(dead).toMatchObject({ state: 'dead', reason: 'relay loop (508)' });
    expect(dead.attempts).toHaveLength(1);
    expect(dead.attempts[0]!.status).toBe(508);
    // Not counted by the circuit breaker (threshold 1 would have opened it).
    const inspectB = new Redis(otherRedis.url);
    expect(await inspectB.hgetall(b.ing.runtime.keys.circuit('relay-a'))).toEqual({});
    inspectB.disconnect();
  });
});
