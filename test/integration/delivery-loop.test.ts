import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import { accept } from '../helpers/bitbucket.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';
import { startTargetServer, type TargetServer, waitUntil } from '../helpers/target-server.js';

const db = useTestRedis();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const hash = () => randomBytes(20).toString('hex');

async function setup(
  overrides: Record<string, unknown> = {},
  opts: { workers?: boolean; targets?: string[] } = {},
): Promise<{ r: TestRelay; t: TargetServer }> {
  const t = await startTargetServer();
  open.push(t);
  const ids = opts.targets ?? ['ci'];
  const r = await startRelay(
    db.url,
    ids.map((id) => target(id, `${t.url}/${id}`, { concurrency: 1 })),
    overrides,
    opts,
  );
  open.push(r);
  return { r, t };
}

async function expectSuppressed(r: TestRelay, id: string, reason: string, targetId = 'ci') {
  const s = await r.settled(id, targetId);
  expect(s).toMatchObject({ state: 'suppressed', reason });
  expect(s.attempts).toEqual([]);
  expect(await db.inspect.zscore(r.ing.runtime.keys.suppressed, `${id}.${targetId}`)).not.toBeNull();
}

describe('loop guard', () => {
  it('skip markers in the head commit message suppress the delivery, recorded with its reason', async () => {
    const { r, t } = await setup();
    const skipped = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ message: 'Bump version to 1.2.4 [skip ci]\n' }),
    );
    const dcSkipped = await accept(
      r.ing.url,
      'dc',
      'repo:refs_changed',
      dcRefsChanged({ message: 'release ***NO_CI***', fromHash: hash(), toHash: hash() }),
    );
    const normal = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    await expectSuppressed(r, skipped, 'skip-marker');
    await expectSuppressed(r, dcSkipped, 'skip-marker');
    expect((await r.settled(normal, 'ci')).state).toBe('delivered');
    expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([normal]);
  });

  it('ignored actors: the pusher, or every new commit authored by a bot', async () => {
    const { r, t } = await setup({
      // Cloud names a user by nickname ('Release' for display name 'Release Bot'); DC by user name.
      loop: { ignoreActors: ['release', '*@ci.acme.test', 'jenkins'] },
    });
    const byActor = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ actor: 'Release Bot', newHash: hash() }),
    );
    const byAuthors = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ author: 'Build Bot <build@ci.acme.test>', newHash: hash() }),
    );
    const dc = await accept(
      r.ing.url,
      'dc',
      'repo:refs_changed',
      dcRefsChanged({ actor: 'jenkins', toHash: hash() }),
    );
    const human = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    await expectSuppressed(r, byActor, 'ignored-actor');
    await expectSuppressed(r, byAuthors, 'ignored-actor');
    await expectSuppressed(r, dc, 'ignored-actor');
    expect((await r.settled(human, 'ci')).state).toBe('delivered');
    expect(t.received).toHaveLength(1);
  });

  it('a rate breaker per repository+branch and target: over the limit in the window is suppressed as ref-rate', async () => {
    const { r, t } = await setup({ loop: { maxTriggersPerRef: { count: 2, window: '1m' } } });
    const main = [];
    for (let i = 0; i < 3; i++)
      main.push(await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() })));
    const other = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ ref: 'develop', newHash: hash() }),
    );
    expect((await r.settled(main[0]!, 'ci')).state).toBe('delivered');
    expect((await r.settled(main[1]!, 'ci')).state).toBe('delivered');
    await expectSuppressed(r, main[2]!, 'ref-rate');
    expect((await r.settled(other, 'ci')).state).toBe('delivered');
    expect(t.received).toHaveLength(3);
  });

  it('jobs carry the guard inputs taken at the fan-out, and the workers guard with them', async () => {
    const { r, t } = await setup(
      { loop: { maxTriggersPerRef: { count: 1, window: '1m' } } },
      { workers: false },
    );
    const skipped = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ message: 'chore [ci skip]' }));
    const first = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    const second = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    for (const id of [skipped, first, second]) await routed(r.ing, id);
    const queue = r.ing.runtime.queues.get('ci')!;
    const jobOf = async (id: string) => (await queue.getJob(`${id}.ci`))!;
    const head = (await jobOf(first)).data.loopGuard!;
    expect(head).toMatchObject({ repository: 'acme/widgets', refs: ['main'] });
    expect(head.mergeMarks).toHaveLength(1);
    expect(head.staticVerdict).toBeUndefined();
    expect((await jobOf(skipped)).data.loopGuard!.staticVerdict).toBe('skip-marker');

    r.startWorkers();
    await expectSuppressed(r, skipped, 'skip-marker');
    expect((await r.settled(first, 'ci')).state).toBe('delivered');
    await expectSuppressed(r, second, 'ref-rate');
    expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([first]);
  });

  it('an event gone before its delivery (retention) fails the job and counts nowhere in the guard', async () => {
    const { r, t } = await setup({}, { workers: false });
    const id = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    await routed(r.ing, id);
    await db.inspect.del(r.ing.runtime.keys.event(id));
    r.startWorkers();
    const queue = r.ing.runtime.queues.get('ci')!;
    await waitUntil(async () => (await queue.getJob(`${id}.ci`))?.failedReason === 'event expired', 10_000);
    expect(await db.inspect.keys(`${r.config.redis.prefix}*rate*`)).toEqual([]);
    expect(t.received).toHaveLength(0);
  });

  it('a merge and the push of its merge commit (12- vs 40-char hash) trigger one delivery per target: the push', async () => {
    const { r, t } = await setup({}, { targets: ['ci', 'ci2'] });
    // The merged PR arrives first and waits for its push; the push builds the destination branch.
    const merge = await accept(
      r.ing.url,
      'cloud',
      'pullrequest:fulfilled',
      cloudPullRequest({ mergeCommit: HASH.merge.slice(0, 12) }),
    );
    const mergePush = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ oldHash: HASH.a, newHash: HASH.merge }),
    );
    for (const id of ['ci', 'ci2']) {
      expect((await r.settled(mergePush, id)).state).toBe('delivered');
      await expectSuppressed(r, merge, 'merge-push-collapsed', id);
    }
    expect(t.received.map((x) => x.url).sort()).toEqual(['/ci', '/ci2']);
    expect(t.received.every((x) => x.headers['x-event-key'] === 'repo:push')).toBe(true);
  });

  it('a merged PR whose push never comes is delivered after collapseWait', async () => {
    const { r, t } = await setup({ loop: { collapseWait: '1s' } });
    const merge = await accept(
      r.ing.url,
      'cloud',
      'pullrequest:fulfilled',
      cloudPullRequest({ id: 99, mergeCommit: HASH.c.slice(0, 12) }),
    );
    const s = await r.settled(merge, 'ci', ['delivered']);
    expect(s.attempts).toHaveLength(1);
    expect(t.received).toHaveLength(1);
    expect(t.received[0]!.headers['x-event-key']).toBe('pullrequest:fulfilled');
  });

  it('a released delivery skips the loop guard and carries the same Idempotency-Key', async () => {
    const { r, t } = await setup();
    const id = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ message: 'chore: bump [ci skip]' }));
    await expectSuppressed(r, id, 'skip-marker');
    // What the ops side does for a release.
    await r.ing.runtime.queues
      .get('ci')!
      .add(
        'release',
        { eventId: id, targetId: 'ci', idempotencyKey: `${id}.ci`, trigger: 'release' },
        { jobId: `${id}.ci.release-1` },
      );
    const s = await r.settled(id, 'ci', ['delivered']);
    expect(s.attempts).toMatchObject([{ number: 1, status: 200, trigger: 'release' }]);
    expect(t.received).toHaveLength(1);
    expect(t.received[0]!.headers['idempotency-key']).toBe(`${id}.ci`);
  });
});

describe('coalescing (latest-per-ref)', () => {
  it('of pushes waiting for a target, only the newest per branch is delivered; older ones name it', async () => {
    const { r, t } = await setup(
      { routes: [{ source: 'cloud', targets: ['ci'], coalesce: 'latest-per-ref' }] },
      { workers: false },
    );
    const main: string[] = [];
    for (let i = 0; i < 3; i++)
      main.push(await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() })));
    const dev = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ ref: 'develop', newHash: hash() }));
    // A newer CI bump with [skip ci] must not swallow the real pushes before it.
    const bump = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ newHash: hash(), message: 'bump [skip ci]' }),
    );
    r.startWorkers();
    expect(await r.settled(main[0]!, 'ci')).toMatchObject({ state: 'coalesced', supersededBy: main[2] });
    expect(await r.settled(main[1]!, 'ci')).toMatchObject({ state: 'coalesced', supersededBy: main[2] });
    expect((await r.settled(main[2]!, 'ci')).state).toBe('delivered');
    expect((await r.settled(dev, 'ci')).state).toBe('delivered');
    await expectSuppressed(r, bump, 'skip-marker');
    expect(t.received.map((x) => x.headers['x-hookrelay-event']).sort()).toEqual([main[2], dev].sort());
  });

  it('a retrying push is superseded by a newer one delivered meanwhile', async () => {
    const { r, t } = await setup({
      routes: [{ source: 'cloud', targets: ['ci'], coalesce: 'latest-per-ref' }],
    });
    t.next({ status: 503, headers: { 'retry-after': '1' } });
    const older = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    await t.waitFor(1);
    const newer = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: hash() }));
    expect((await r.settled(newer, 'ci')).state).toBe('delivered');
    expect(await r.settled(older, 'ci')).toMatchObject({ state: 'coalesced', supersededBy: newer });
    expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([older, newer]);
  });
});

describe('newest by the branch graph, not by arrival', () => {
  const b = hash();
  const c = hash();

  it('coalescing: the branch head is built when an older push (a late retry) arrives after it', async () => {
    const { r, t } = await setup(
      { routes: [{ source: 'cloud', targets: ['ci'], coalesce: 'latest-per-ref' }] },
      { workers: false },
    );
    // C (b → c) arrives first, then Bitbucket's retry of B (a → b): by arrival B would look newest.
    const newer = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: b, newHash: c }));
    const older = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: HASH.a, newHash: b }));
    r.startWorkers();
    expect((await r.settled(newer, 'ci')).state).toBe('delivered');
    expect(await r.settled(older, 'ci')).toMatchObject({ state: 'coalesced', supersededBy: newer });
    expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([newer]);
  });

  it('without coalescing, an older push first seen after a newer one was delivered is not sent (skipSuperseded)', async () => {
    // Checked in the guard's read (one script) on a first attempt, not by the gate's own call: same verdict.
    const { r, t } = await setup({ routes: [{ source: 'cloud', targets: ['ci'], skipSuperseded: true }] });
    const newer = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: b, newHash: c }));
    expect((await r.settled(newer, 'ci')).state).toBe('delivered');
    const older = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: HASH.a, newHash: b }));
    expect(await r.settled(older, 'ci')).toMatchObject({
      state: 'coalesced',
      supersededBy: newer,
      evidence: { rule: 'superseded', newerEvent: newer, newerHead: c.slice(0, 12), action: 'skipped' },
    });
    expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([newer]);
    // A push that is newer than the one delivered is sent.
    const next = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: c, newHash: hash() }));
    expect((await r.settled(next, 'ci')).state).toBe('delivered');
  });

  for (const skipSuperseded of [false, true]) {
    it(`without coalescing, an older push retried after a newer one was delivered is reported${skipSuperseded ? ' and not sent (skipSuperseded)' : ''}`, async () => {
      const { r, t } = await setup({
        routes: [{ source: 'cloud', targets: ['ci'], skipSuperseded }],
      });
      t.next({ status: 503, headers: { 'retry-after': '2' } });
      const older = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: HASH.a, newHash: b }));
      await t.waitFor(1);
      const newer = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ oldHash: b, newHash: c }));
      expect((await r.settled(newer, 'ci')).state).toBe('delivered');
      const evidence = { rule: 'superseded', newerEvent: newer, newerHead: c.slice(0, 12) };
      if (skipSuperseded) {
        const s = await r.settled(older, 'ci');
        expect(s).toMatchObject({
          state: 'coalesced',
          supersededBy: newer,
          evidence: { ...evidence, action: 'skipped' },
        });
        expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([older, newer]);
      } else {
        const s = await r.settled(older, 'ci', ['delivered', 'dead']);
        expect(s).toMatchObject({ state: 'delivered', evidence: { ...evidence, action: 'sent' } });
        expect(t.received.map((x) => x.headers['x-hookrelay-event'])).toEqual([older, newer, older]);
        expect(r.logs.lines.some((l) => l.msg === 'an older push after a newer one')).toBe(true);
      }
      expect(
        (
          await r.ing.runtime.metrics.registry.getSingleMetricAsString(
            'hookrelay_superseded_deliveries_total',
          )
        )
          .split('\n')
          .some((l) => l.includes(`action="${skipSuperseded ? 'skipped' : 'sent'}"`) && l.endsWith(' 1')),
      ).toBe(true);
    });
  }
});
