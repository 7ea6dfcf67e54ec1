// biome-ignore-all lint/suspicious/noExplicitAny: JSON answers are read loosely; the assertions check their shape
import { afterEach, describe, expect, it } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import { FAN_OUT_GROUP } from '../../src/fanout/route-writer.js';
import type { ReceivedCopy, StoredEvent } from '../../src/queue/event-store.js';
import { LocalHandoff } from '../../src/queue/local-handoff.js';
import { cloudPullRequest, cloudPush } from '../fixtures/payloads.js';
import { api, startAdmin } from '../helpers/admin.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';
import { waitUntil } from '../helpers/target-server.js';

const VIEWER = 'fan-out-viewer-token-0123456789abcdef';

const db = useTestRedis();

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An ingress whose fan-out is not started: what it receives stays in the inbox until a test starts one. */
async function ingressAlone(extra: Record<string, unknown> = {}): Promise<TestIngress> {
  const config = testConfig(db.url, {
    admin: { tokens: [{ name: 'vic', token: VIEWER, role: 'viewer' }] },
    ...extra,
  });
  const ing = await startIngress(config, captureLogs().log, { fanOut: false });
  closers.push(() => ing.close());
  return ing;
}

/** A fan-out over the same runtime, as a worker process runs it (its consumer name unique). */
async function fanOutOf(ing: TestIngress) {
  const { startFanOut } = await import('../../src/fanout/fan-out.js');
  const fanOut = startFanOut(ing.runtime, { blockMs: 100 });
  closers.push(() => fanOut.close());
  return fanOut;
}

/** One signed push per branch, each answered 202; their event ids. */
async function pushes(ing: TestIngress, refs: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const ref of refs) {
    const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref })));
    expect(res.status).toBe(202);
    ids.push(String(res.json.id));
  }
  return ids;
}

async function jobIds(ing: TestIngress): Promise<string[]> {
  return db.inspect.lrange(`${ing.runtime.config.redis.prefix}:deliver-ci:wait`, 0, -1);
}

describe('the fan-out stage', () => {
  it('in one process the ingress hands each received event over as Redis holds it, field for field', async () => {
    const ing = await ingressAlone();
    const handoff = new LocalHandoff<ReceivedCopy>();
    ing.runtime.store.receivedHandoff = handoff;
    // A small body is stored as is, a larger one compressed: both are handed over decoded.
    const small = await send(ing.url, 'cloud', cloudRequest('repo:push', { push: { changes: [] } }));
    const large = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ commits: 5 })));
    for (const res of [small, large]) {
      expect(res.status).toBe(202);
      const id = String(res.json.id);
      const copy = handoff.take(id);
      expect(copy?.event).toEqual(await ing.runtime.store.read(id));
      const raw = await db.inspect.hgetallBuffer(ing.runtime.keys.event(id));
      expect(copy?.fields).toEqual({ hdr: raw.hdr, enc: raw.enc, body: raw.body });
    }
    expect((await ing.runtime.store.read(String(small.json.id)))?.body.length).toBeLessThan(1024);
    expect(handoff.size).toBe(0);
  });

  it('the fan-out hands each routed event to the delivery workers of its process as Redis holds it', async () => {
    const ing = await ingressAlone();
    const handoff = new LocalHandoff<StoredEvent>();
    ing.runtime.store.routedHandoff = handoff;
    await fanOutOf(ing);
    // A push of one branch, then one that repeats that move and moves another branch: the routed record
    // names the repeated ref.
    const first = cloudPush({ ref: 'main', commits: 3 });
    const one = await send(ing.url, 'cloud', cloudRequest('repo:push', first));
    const push = cloudPush({ ref: 'dev' });
    push.push.changes.unshift(first.push.changes[0]!);
    const two = await send(ing.url, 'cloud', cloudRequest('repo:push', push));
    for (const res of [one, two]) {
      const id = String(res.json.id);
      await routed(ing, id);
      // Handed over once the route script's answer is in, a moment after Redis says routed.
      await waitUntil(() => handoff.size > 0);
      const handed = handoff.take(id);
      expect(handed).toBeDefined();
      // Equal as data: the handed envelope may carry keys set to undefined, which the stored JSON leaves out.
      expect(handed).toEqual(await ing.runtime.store.read(id));
      // One target: one take.
      expect(handoff.take(id)).toBeUndefined();
      expect(handed?.envelope.repeatedRefs).toEqual(res === two ? ['main'] : undefined);
    }
    expect(handoff.size).toBe(0);
  });

  it('a routed event is handed over once per target it applies to', async () => {
    const ing = await ingressAlone({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/hook' },
        { id: 'reviews', url: 'http://127.0.0.1:9/reviews', events: ['pullrequest:*'] },
      ],
      routes: [{ source: 'cloud', targets: ['ci', 'reviews'] }],
    });
    const handoff = new LocalHandoff<StoredEvent>();
    ing.runtime.store.routedHandoff = handoff;
    await fanOutOf(ing);
    const push = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
    const pr = await send(ing.url, 'cloud', cloudRequest('pullrequest:created', cloudPullRequest()));
    const takes = async (id: string) => {
      await routed(ing, id);
      await waitUntil(() => handoff.size > 0);
      let n = 0;
      while (handoff.take(id)) n++;
      return n;
    };
    // Both targets have the push's job, but `reviews` ends it as not applicable before reading the event.
    expect(await takes(String(push.json.id))).toBe(1);
    expect(await takes(String(pr.json.id))).toBe(2);
    expect(handoff.size).toBe(0);
  });

  it('an event whose record cannot be read fails alone: the rest of its batch is routed', async () => {
    const ing = await ingressAlone();
    const ids = await pushes(ing, ['one', 'two', 'three']);
    // The middle one's meta is damaged (compressed-meta marker, then bytes LZ4 cannot read).
    await db.inspect.hset(ing.runtime.keys.event(ids[1]!), 'meta', Buffer.from([0, 1, 2, 3]));
    await fanOutOf(ing);
    expect((await routed(ing, ids[0]!)).state).toBe('routed');
    expect((await routed(ing, ids[2]!)).state).toBe('routed');
    expect(await db.inspect.hget(ing.runtime.keys.event(ids[1]!), 'state')).toBe('received');
    expect(await db.inspect.xlen(ing.runtime.keys.inbox(0))).toBe(1);
  });

  it('a fan-out in the ingress process routes from the handoff, and one without it reads Redis', async () => {
    const ing = await ingressAlone();
    const before = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref: 'before' })));
    await fanOutOf(ing);
    const handoff = ing.runtime.store.receivedHandoff;
    expect(handoff).toBeDefined();
    const after = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref: 'after' })));
    for (const res of [before, after]) {
      expect(await routed(ing, String(res.json.id))).toMatchObject({ state: 'routed', targets: ['ci'] });
    }
    // `before` was received with no fan-out running here: read from Redis. `after` was handed over.
    const counted = await ing.runtime.metrics.localHandoff.get();
    const received = (result: string) =>
      counted.values.find((v) => v.labels.stage === 'received' && v.labels.result === result)?.value;
    expect([received('hit'), received('miss'), received('dropped')]).toEqual([1, 1, undefined]);
    expect(await jobIds(ing)).toEqual([`${after.json.id}.ci`, `${before.json.id}.ci`]);
  });

  it('an event is visible as received from its 202 on, and routed once a fan-out runs', async () => {
    const ing = await ingressAlone();
    const admin = await startAdmin(ing.runtime);
    closers.push(() => admin.close());
    const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ id: expect.any(String), duplicate: false, state: 'received' });
    const id = String(res.json.id);

    const shown = await api<any>(admin.url, 'GET', `/api/events/${id}`, { token: VIEWER });
    expect(shown.status).toBe(200);
    expect(shown.json).toMatchObject({ id, state: 'received', eventKey: 'repo:push', targets: [] });
    expect(shown.json.timeline.find((e: any) => e.kind === 'routing').title).toContain(
      'waiting for the fan-out',
    );
    const listed = await api<any>(admin.url, 'GET', '/api/events?state=received', { token: VIEWER });
    expect(listed.json.events.map((e: any) => [e.id, e.state])).toEqual([[id, 'received']]);
    expect(await db.inspect.xlen(ing.runtime.keys.inbox(0))).toBe(1);
    expect(await jobIds(ing)).toEqual([]);

    await fanOutOf(ing);
    expect(await routed(ing, id)).toMatchObject({ state: 'routed', targets: ['ci'] });
    expect(await jobIds(ing)).toEqual([`${id}.ci`]);
    const after = await api<any>(admin.url, 'GET', `/api/events/${id}`, { token: VIEWER });
    expect(after.json).toMatchObject({ state: 'routed', repository: 'acme/widgets' });
    expect(after.json.timeline.find((e: any) => e.kind === 'routing').title).toBe('Routed to ci');
    // Routed entries are acknowledged and deleted: the inbox does not grow.
    expect(await db.inspect.xlen(ing.runtime.keys.inbox(0))).toBe(0);
  });

  it('a consumer that read entries and died before acknowledging them: another claims them, no duplicate jobs', async () => {
    // Taken over after `worker.inboxTakeover`: with the default 15 s the entries would outwait this test.
    const ing = await ingressAlone({ worker: { inboxTakeover: '1s' } });
    const ids = await pushes(ing, ['main', 'dev', 'release/1']);
    const inbox = ing.runtime.keys.inbox(0);
    // The dead consumer: it read all three (they are pending on it) and never got to decide or acknowledge.
    await db.inspect.xgroup('CREATE', inbox, FAN_OUT_GROUP, '0', 'MKSTREAM');
    const read = (await db.inspect.xreadgroup(
      'GROUP',
      FAN_OUT_GROUP,
      'dead-consumer',
      'COUNT',
      10,
      'STREAMS',
      inbox,
      '>',
    )) as [string, [string, string[]][]][];
    expect(read[0]![1]).toHaveLength(3);

    const fanOut = await fanOutOf(ing);
    for (const id of ids) expect((await routed(ing, id)).targets).toEqual(['ci']);
    expect((await jobIds(ing)).sort()).toEqual(ids.map((id) => `${id}.ci`).sort());
    expect(await db.inspect.xpending(inbox, FAN_OUT_GROUP)).toEqual([0, null, null, null]);
    expect(await db.inspect.xlen(inbox)).toBe(0);

    // Decided again (its acknowledgement lost, say): the script sees it routed and writes nothing twice.
    const again = await fanOut.process(0, [['0-1', ['id', ids[0]!]]]);
    expect(again).toEqual([{ state: 'decided', previous: 'routed' }]);
    expect(await jobIds(ing)).toHaveLength(3);
  });

  it('a signed body that is not UTF-8 or not JSON is answered 202 and quarantined, never delivered', async () => {
    const ing = await ingressAlone();
    await fanOutOf(ing);
    const { headers } = cloudRequest('repo:push', {});
    const bodies: [Buffer, string][] = [
      [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'body is not valid UTF-8'],
      [Buffer.from('{"push": '), 'body is not valid JSON'],
    ];
    for (const [body, reason] of bodies) {
      const res = await send(ing.url, 'cloud', {
        body,
        headers: {
          ...headers,
          'x-request-uuid': crypto.randomUUID(),
          'x-hub-signature': sign(SECRETS.cloud, body),
        },
      });
      expect(res.status).toBe(202);
      const id = String(res.json.id);
      expect(await routed(ing, id)).toMatchObject({ state: 'quarantined', quarantine: reason, targets: [] });
      expect(await db.inspect.zscore(ing.runtime.keys.quarantinedOf(0), id)).not.toBeNull();
      expect((await ing.runtime.store.read(id))?.body.equals(body)).toBe(true);
    }
    expect(await jobIds(ing)).toEqual([]);
  });
});
