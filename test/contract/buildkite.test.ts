import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, cloudRepository, HASH } from '../fixtures/payloads.js';
import { useTestRedis } from '../helpers/redis.js';
import { contract } from './harness.js';
import { BuildkiteReceiver } from './receivers/buildkite.js';

const db = useTestRedis();
const c = contract(() => db.url);
const PIPELINE = '/v2/organizations/acme/pipelines/widgets/builds';

async function setup(extra: Record<string, unknown> = {}) {
  const bk = new BuildkiteReceiver(PIPELINE, 'bk-token');
  const server = await c.receiver(bk.answer);
  const relay = await c.relay(server, `${server.url}${PIPELINE}`, {
    type: 'buildkite',
    auth: { type: 'bearer', token: 'bk-token' },
    ...extra,
  });
  return { bk, server, relay };
}

/** A Cloud push of a branch and a new tag together (one change each, as Bitbucket lists them). */
function branchAndTag() {
  const push = cloudPush({ ref: 'main', newHash: HASH.b, author: 'Ada Lovelace <ada@acme.test>' });
  const tag = cloudPush({ ref: 'v1.2.0', kind: 'tag', oldHash: null, newHash: HASH.c });
  push.push.changes.push(tag.push.changes[0]!);
  return push;
}

describe('buildkite contract', () => {
  it('a branch and a tag pushed together: one create each, JSON with author, meta_data and the tag env', async () => {
    const { bk, server, relay } = await setup();
    const id = await c.cloud(relay, 'repo:push', branchAndTag());
    const state = await relay.settled(id, 't');
    expect(state.state).toBe('delivered');
    expect(state.attempts.map((a) => a.status)).toEqual([201]);
    expect(bk.builds.map((b) => [b.branch, b.commit])).toEqual([
      ['main', HASH.b],
      ['v1.2.0', HASH.c],
    ]);
    expect(bk.builds[0]).toMatchObject({
      author: { name: 'Ada Lovelace', email: 'ada@acme.test' },
      meta_data: { hookrelay_idempotency_key: `${id}.t`, hookrelay_ref: 'branch:main' },
      env: { BITBUCKET_EVENT_KEY: 'repo:push', BITBUCKET_REPOSITORY: 'acme/widgets', HOOKRELAY_EVENT_ID: id },
    });
    expect(bk.builds[1]!.env.BITBUCKET_TAG).toBe('v1.2.0');
    for (const got of server.received) {
      expect(got.method).toBe('POST');
      expect(got.url).toBe(PIPELINE);
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers.accept).toBe('application/json');
    }
    // Two messages of one delivery: two webhook ids, one Idempotency-Key.
    expect(new Set(server.received.map((r) => r.headers['webhook-id'])).size).toBe(2);
    expect(new Set(server.received.map((r) => r.headers['idempotency-key']))).toEqual(new Set([`${id}.t`]));
  });

  it('a create that timed out after Buildkite made the build: the retry finds it and builds nothing twice', async () => {
    const { bk, server, relay } = await setup();
    bk.hangAfterCreateNext = true;
    const id = await c.cloud(relay, 'repo:push', cloudPush({ ref: 'main', newHash: HASH.b }));
    const state = await relay.settled(id, 't');
    expect(state.state).toBe('delivered');
    expect(state.attempts.map((a) => a.error ?? a.status)).toEqual(['timeout', 200]);
    expect(bk.builds).toHaveLength(1);
    const lookup = new URL(server.received[1]!.url, server.url);
    expect(server.received[1]!.method).toBe('GET');
    expect(lookup.pathname).toBe(PIPELINE);
    expect(lookup.searchParams.get('branch')).toBe('main');
    expect(lookup.searchParams.get('commit')).toBe(HASH.b);
    expect(server.received).toHaveLength(2);
  });

  it('one ref built, the next refused for now: the retry builds only the missing one', async () => {
    const { bk, server, relay } = await setup();
    // After the first create the limit is spent: the tag's create gets Buildkite's 429.
    bk.remaining = 1;
    bk.resetSeconds = 1;
    const id = await c.cloud(relay, 'repo:push', branchAndTag());
    const state = await relay.settled(id, 't');
    expect(state.state).toBe('delivered');
    expect(bk.builds.map((b) => b.branch)).toEqual(['main', 'v1.2.0']);
    expect(state.attempts[0]!.status).toBe(429);
    // RateLimit-Reset: 1 → the retry waited about a second, not the 50 ms backoff.
    const retry = server.received.find((r, i) => i > 0 && r.method === 'GET')!;
    const refused = server.received.find((r) => r.method === 'POST' && r.n === 2)!;
    expect(retry.at - refused.at).toBeGreaterThanOrEqual(950);
    expect(server.received.map((r) => r.method)).toEqual(['POST', 'POST', 'GET', 'GET', 'POST']);
  });

  it('a pull request from a fork: the 12-character head, the PR fields and the fork repository', async () => {
    const { bk, relay } = await setup();
    const payload = cloudPullRequest({ state: 'OPEN', mergeCommit: null, source: 'feature/x' });
    payload.pullrequest.source.repository = cloudRepository('ada/widgets');
    const id = await c.cloud(relay, 'pullrequest:created', payload);
    expect((await relay.settled(id, 't')).state).toBe('delivered');
    expect(bk.builds).toMatchObject([
      {
        commit: '0704fc5beccc',
        branch: 'feature/x',
        pull_request: { id: '7', base: 'main', repository: 'https://bitbucket.org/ada/widgets.git' },
      },
    ]);
  });

  it("422 is permanent, with Buildkite's reason in the dead letter; a deleted branch is not applicable", async () => {
    const { bk, server, relay } = await setup();
    bk.refuseNext = 'Branch "main" is not built by this pipeline';
    const refused = await c.cloud(relay, 'repo:push', cloudPush());
    const state = await relay.settled(refused, 't');
    expect(state).toMatchObject({ state: 'dead', reason: 'status 422' });
    expect(state.excerpt).toContain('is not built by this pipeline');
    const deleted = await c.cloud(relay, 'repo:push', cloudPush({ ref: 'gone', newHash: null }));
    expect(await relay.settled(deleted, 't')).toMatchObject({
      state: 'not-applicable',
      reason: 'nothing to build',
    });
    expect(server.received).toHaveLength(1);
  });
});
