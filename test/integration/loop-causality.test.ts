import { afterEach, describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcPrMerged, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import { api, startAdmin } from '../helpers/admin.js';
import { accept, cloudRequest, send } from '../helpers/bitbucket.js';
import { runCli } from '../helpers/cli.js';
import { SECRETS } from '../helpers/config.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import {
  type Build,
  newHash,
  type ReactiveCi,
  startReactiveCi,
  type Webhook,
} from '../helpers/reactive-ci.js';
import { useTestRedis } from '../helpers/redis.js';
import { startTargetServer } from '../helpers/target-server.js';

/*
 * Real CI feedback loops, end to end: a reactive CI target (test/helpers/reactive-ci.ts) pushes or merges back
 * through signed Bitbucket webhooks for each build it receives, and the relay must stop each loop within
 * `loop.chain.maxTurns` turns whatever their speed, without ever holding a person's push because of a bot.
 */

const db = useTestRedis();
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const MAX_TURNS = 3;
const prefix = (hash: string) => hash.slice(0, 12);

async function setup(
  react: (build: Build) => Webhook[],
  overrides: Record<string, unknown> = {},
  // A pipeline's time from the build request to its push back.
  turnDelayMs = 100,
): Promise<{ r: TestRelay; ci: ReactiveCi }> {
  const ci = await startReactiveCi({ react, turnDelayMs });
  open.push(ci);
  const r = await startRelay(db.url, [target('ci', ci.url, { concurrency: 1 })], {
    ...overrides,
    loop: { chain: { maxTurns: MAX_TURNS }, ...(overrides.loop as object) },
  });
  open.push(r);
  ci.connect(r.ing.url);
  return { r, ci };
}

/** Runs until the CI has nothing more to react to: its last webhook settled other than delivered. */
async function settleLoop(r: TestRelay, ci: ReactiveCi, first: string) {
  for (;;) {
    await ci.idle();
    const last = ci.caused.at(-1) ?? first;
    const state = await r.settled(last, 'ci');
    await ci.idle();
    if (ci.caused.at(-1) === last) return { id: last, state };
  }
}

/** The CI's version bump: a commit on the built branch whose parent is the built commit. */
const bump =
  (actor: string, message = 'Bump version\n') =>
  (build: Build): Webhook[] =>
    build.kind === 'branch'
      ? [
          {
            source: 'cloud',
            eventKey: 'repo:push',
            payload: cloudPush({
              ref: build.ref,
              oldHash: build.commit,
              newHash: newHash(),
              actor,
              author: `${actor} <ci@ci.acme.test>`,
              message,
            }),
          },
        ]
      : [];

function metric(r: TestRelay, reason: string): Promise<string> {
  return r.ing.runtime.metrics.registry
    .getSingleMetricAsString('hookrelay_loop_suppressed_total')
    .then((text) => text.split('\n').find((l) => l.includes(`reason="${reason}"`)) ?? '');
}

describe('causal loop guard with a reactive CI', () => {
  it('a slow unconfigured loop (turns slower than the rate window allows) stops after maxTurns', async () => {
    // The rate breaker allows 2 pushes per second and each turn takes longer than half a second: it never trips.
    const { r, ci } = await setup(
      bump('CI Bot'),
      { loop: { maxTriggersPerRef: { count: 2, window: '1s' } } },
      600,
    );
    const first = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
    const end = await settleLoop(r, ci, first);
    expect(end?.state).toMatchObject({ state: 'suppressed', reason: 'chain-loop' });
    // The person's push, then MAX_TURNS - 1 bot turns were built; the bot's next turn was held.
    expect(ci.builds.map((b) => b.relayEvent)).toEqual([first, ...ci.caused.slice(0, MAX_TURNS - 1)]);
    expect(ci.caused).toHaveLength(MAX_TURNS);
    expect(end?.state.evidence).toMatchObject({
      rule: 'chain-loop',
      actor: 'CI',
      parentCommit: prefix(ci.builds.at(-1)!.commit),
      turns: MAX_TURNS,
      maxTurns: MAX_TURNS,
    });
    expect(await metric(r, 'chain-loop')).toMatch(/ 1$/);
  });

  it('a person pushing in the middle of a bot loop is built, and the bot starts counting again', async () => {
    const bot = bump('CI Bot');
    const { r, ci } = await setup((build) =>
      // After the bot's second turn is built a person pushes on top of it; the bot bumps every other build.
      build.n === 3
        ? [
            {
              source: 'cloud',
              eventKey: 'repo:push',
              payload: cloudPush({ oldHash: build.commit, newHash: newHash(), actor: 'Grace Hopper' }),
            },
          ]
        : bot(build),
    );
    const first = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
    const end = await settleLoop(r, ci, first);
    expect(end?.state.reason).toBe('chain-loop');
    const person = ci.caused[2]!;
    expect((await r.settled(person, 'ci')).state).toBe('delivered');
    // Ada's push, 2 bot turns, Grace's push, then the bot's turns count from 1 again: 2 more built.
    expect(ci.builds[3]?.relayEvent).toBe(person);
    expect(ci.builds).toHaveLength(1 + 2 + 1 + (MAX_TURNS - 1));
  });

  it('a loop that tags every build (a new ref each turn, Data Center) stops after maxTurns', async () => {
    let tags = 0;
    const { r, ci } = await setup((build) => {
      tags += 1;
      return [
        {
          source: 'dc',
          eventKey: 'repo:refs_changed',
          payload: dcRefsChanged({
            ref: `build-${tags}`,
            kind: 'TAG',
            type: 'ADD',
            toHash: build.commit,
            actor: 'jenkins',
            message: 'Release',
          }),
        },
      ];
    });
    const first = await accept(r.ing.url, 'dc', 'repo:refs_changed', dcRefsChanged({ toHash: newHash() }));
    const end = await settleLoop(r, ci, first);
    expect(end?.state).toMatchObject({ state: 'suppressed', reason: 'chain-loop' });
    expect(ci.builds).toHaveLength(MAX_TURNS);
    expect(ci.builds.slice(1).every((b) => b.kind === 'tag')).toBe(true);
    expect(end?.state.evidence).toMatchObject({ actor: 'jenkins', turns: MAX_TURNS });
  });

  it('main and release merged into each other by a bot (ping-pong) stops after maxTurns', async () => {
    const heads: Record<string, string> = { main: HASH.a, release: HASH.c };
    const { r, ci } = await setup((build) => {
      heads[build.ref] = build.commit;
      const into = build.ref === 'main' ? 'release' : 'main';
      const merge = newHash();
      return [
        {
          source: 'cloud',
          eventKey: 'repo:push',
          payload: cloudPush({
            ref: into,
            oldHash: heads[into]!,
            newHash: merge,
            parents: [heads[into]!, build.commit],
            actor: 'CI Bot',
            message: `Merge ${build.ref} into ${into}\n`,
          }),
        },
      ];
    });
    const head = newHash();
    heads.main = head;
    const first = await accept(
      r.ing.url,
      'cloud',
      'repo:push',
      cloudPush({ oldHash: HASH.a, newHash: head }),
    );
    const end = await settleLoop(r, ci, first);
    expect(end?.state.reason).toBe('chain-loop');
    expect(ci.builds.map((b) => b.ref)).toEqual(['main', 'release', 'main'].slice(0, MAX_TURNS));
  });

  it('a release bot in ignoreActors and a [skip ci] bump each cost one build', async () => {
    for (const [overrides, react] of [
      [{ loop: { ignoreActors: ['release'] } }, bump('Release Bot')],
      [{}, bump('CI Bot', 'Bump version [skip ci]\n')],
    ] as const) {
      const { r, ci } = await setup(react, overrides);
      const first = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
      const end = await settleLoop(r, ci, first);
      expect(end?.state.state).toBe('suppressed');
      expect(ci.builds).toHaveLength(1);
      await Promise.all(
        open
          .splice(0)
          .reverse()
          .map((o) => o.close()),
      );
    }
  });

  it("a bot's per-ref rate never holds a person's push to the same branch", async () => {
    const t = await startTargetServer();
    open.push(t);
    const r = await startRelay(db.url, [target('ci', t.url)], {
      loop: { maxTriggersPerRef: { count: 2, window: '1m' } },
    });
    open.push(r);
    const bot = [];
    for (let i = 0; i < 3; i++) {
      bot.push(
        await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash(), actor: 'CI Bot' })),
      );
    }
    const person = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
    const held = await r.settled(bot[2]!, 'ci');
    expect(held).toMatchObject({ state: 'suppressed', reason: 'ref-rate' });
    expect(held.evidence).toMatchObject({
      rule: 'ref-rate',
      actor: 'CI',
      ref: 'main',
      count: 2,
      windowSeconds: 60,
    });
    expect((await r.settled(person, 'ci')).state).toBe('delivered');
  });

  it("one source's pushes never count against another source's push to the same repository and branch", async () => {
    const t = await startTargetServer();
    open.push(t);
    const other = 'other-source-secret-4f1c';
    const r = await startRelay(db.url, [target('ci', t.url)], {
      sources: [
        { id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] },
        { id: 'cloud2', platform: 'cloud', secrets: [other] },
      ],
      routes: [
        { source: 'cloud', targets: ['ci'] },
        { source: 'cloud2', targets: ['ci'] },
      ],
      loop: { maxTriggersPerRef: { count: 2, window: '1m' } },
    });
    open.push(r);
    const flood = [];
    for (let i = 0; i < 3; i++) {
      const res = await send(
        r.ing.url,
        'cloud2',
        cloudRequest('repo:push', cloudPush({ newHash: newHash() }), { secret: other }),
      );
      expect(res.status).toBe(202);
      flood.push(String(res.json.id));
    }
    expect((await r.settled(flood[2]!, 'ci')).reason).toBe('ref-rate');
    const legit = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
    expect((await r.settled(legit, 'ci')).state).toBe('delivered');
  });
});

describe('explanations', () => {
  it('a held turn explains itself in the event trace, through the admin API and the CLI', async () => {
    const token = 'operator-token-0123456789abcdef';
    const { r, ci } = await setup(bump('CI Bot'), {
      admin: { tokens: [{ name: 'ops', token, role: 'operator' }] },
    });
    const first = await accept(r.ing.url, 'cloud', 'repo:push', cloudPush({ newHash: newHash() }));
    const end = await settleLoop(r, ci, first);
    const admin = await startAdmin(r.ing.runtime);
    open.push(admin);
    const parent = prefix(ci.builds.at(-1)!.commit);
    const trace = await api<{ targets: { evidence?: object; explanation?: string }[] }>(
      admin.url,
      'GET',
      `/api/events/${end!.id}`,
      { token },
    );
    expect(trace.json.targets[0]).toMatchObject({
      evidence: { rule: 'chain-loop', actor: 'CI', parentCommit: parent, turns: MAX_TURNS },
      explanation: `CI pushed on ${parent}, a commit this relay delivered to this target, ${MAX_TURNS} times in a row (loop.chain.maxTurns ${MAX_TURNS}; turns remembered 3600 s)`,
    });
    const cli = await runCli(['events', 'show', end!.id, '--admin-url', admin.url, '--token', token]);
    expect(cli.stdout).toContain(`why: CI pushed on ${parent}`);
  });
});

describe('merge bots', () => {
  const mergeBack =
    (shape: 'cloud' | 'dc', opts: { title?: string; message?: string; actor: string }) =>
    (build: Build): Webhook[] => {
      if (build.ref !== 'feature/thing') return [];
      const merge = newHash();
      return shape === 'cloud'
        ? [
            {
              source: 'cloud',
              eventKey: 'pullrequest:fulfilled',
              payload: cloudPullRequest({
                mergeCommit: merge.slice(0, 12),
                actor: opts.actor,
                title: opts.title,
              }),
            },
            {
              source: 'cloud',
              eventKey: 'repo:push',
              payload: cloudPush({
                oldHash: HASH.a,
                newHash: merge,
                parents: [HASH.a, build.commit],
                actor: opts.actor,
                message: opts.message ?? `Merged in feature/thing (pull request #7)\n\n${opts.title ?? ''}\n`,
              }),
            },
          ]
        : [
            {
              source: 'dc',
              eventKey: 'pr:merged',
              payload: dcPrMerged({
                mergeCommit: merge,
                from: 'feature/thing',
                actor: opts.actor,
                title: opts.title,
              }),
            },
            {
              source: 'dc',
              eventKey: 'repo:refs_changed',
              payload: dcRefsChanged({
                fromHash: HASH.a,
                toHash: merge,
                parents: [HASH.a, build.commit],
                actor: opts.actor,
                message:
                  opts.message ??
                  `Merge pull request #3 in ACME/widgets from feature/thing to main\n\n* commit '${build.commit}'`,
              }),
            },
          ];
    };

  /** A person pushes the PR's branch; once it is built the bot merges: the merged PR and its push. */
  async function pushFeature(r: TestRelay, ci: ReactiveCi, shape: 'cloud' | 'dc') {
    const feature =
      shape === 'cloud'
        ? cloudPush({ ref: 'feature/thing', newHash: newHash() })
        : dcRefsChanged({ ref: 'feature/thing', toHash: newHash() });
    await accept(r.ing.url, shape, shape === 'cloud' ? 'repo:push' : 'repo:refs_changed', feature);
    await ci.target.waitFor(1);
    await ci.idle();
    return ci.caused;
  }

  for (const shape of ['cloud', 'dc'] as const) {
    it(`merging a PR whose merge commit says [skip ci] builds nothing: the merged PR inherits its push's verdict (${shape})`, async () => {
      const { r, ci } = await setup(
        mergeBack(shape, {
          actor: 'Merge Bot',
          message: 'Merge feature/thing\n\nchore: bump deps [skip ci]',
        }),
      );
      const [pr, push] = await pushFeature(r, ci, shape);
      const pushState = await r.settled(push!, 'ci');
      expect(pushState).toMatchObject({ state: 'suppressed', reason: 'skip-marker' });
      const prState = await r.settled(pr!, 'ci');
      expect(prState).toMatchObject({ state: 'suppressed', reason: 'skip-marker' });
      expect(prState.evidence).toMatchObject({
        rule: 'merge-push-verdict',
        pushEvent: push,
        pushReason: 'skip-marker',
      });
      expect(ci.builds).toHaveLength(1);
    });

    it(`a merge bot in ignoreActors merging a [skip ci]-titled PR builds nothing (${shape})`, async () => {
      for (const opts of [
        { actor: 'merge-bot', title: 'Bump deps' },
        { actor: 'Grace Hopper', title: '[skip ci] Bump deps', message: 'Merged in feature/thing' },
      ]) {
        const { r, ci } = await setup(mergeBack(shape, opts), {
          loop: { ignoreActors: ['merge-bot', 'merge'] },
        });
        const [pr, push] = await pushFeature(r, ci, shape);
        const prState = await r.settled(pr!, 'ci');
        expect(prState.state).toBe('suppressed');
        if (opts.actor === 'merge-bot') {
          expect(prState).toMatchObject({ reason: 'ignored-actor', evidence: { where: 'merging actor' } });
          expect((await r.settled(push!, 'ci')).reason).toBe('ignored-actor');
        } else {
          expect(prState).toMatchObject({ reason: 'skip-marker', evidence: { where: 'pull request title' } });
        }
        // Whatever the person's merge push does, the merged PR never adds a build of main.
        expect(ci.builds.filter((b) => b.eventKey.includes('pr')).length).toBe(0);
        await Promise.all(
          open
            .splice(0)
            .reverse()
            .map((o) => o.close()),
        );
      }
    });
  }
});

describe('Bitbucket Server pushes without commit messages', () => {
  const TOKEN = 'bbdc-http-access-token-7f3c';

  /**
   * Bitbucket Data Center's commit resource, as its REST API answers it (Atlassian, Bitbucket Data Center REST
   * API, Repository → "Get commit": GET /rest/api/1.0/projects/{projectKey}/repos/{repositorySlug}/commits/
   * {commitId}; 401 without valid credentials, 404 for an unknown commit). A real HTTP server on port 0.
   */
  async function fakeBitbucketDc(messages: Map<string, string>) {
    const asked: string[] = [];
    const server = await startTargetServer((req) => {
      asked.push(req.url);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        return { status: 401, body: '{"errors":[{"message":"Authentication failed."}]}' };
      }
      const m = /^\/rest\/api\/1\.0\/projects\/ACME\/repos\/widgets\/commits\/([0-9a-f]{40})$/.exec(req.url);
      const message = m ? messages.get(m[1]!) : undefined;
      if (!m || message === undefined) return { status: 404, body: '{"errors":[{"message":"not found"}]}' };
      const author = {
        name: 'jenkins',
        emailAddress: 'jenkins@acme.test',
        id: 7,
        slug: 'jenkins',
        type: 'NORMAL',
      };
      return {
        status: 200,
        headers: { 'content-type': 'application/json;charset=UTF-8' },
        body: JSON.stringify({
          id: m[1],
          displayId: m[1]!.slice(0, 11),
          author,
          authorTimestamp: 1732671086000,
          committer: author,
          committerTimestamp: 1732671086000,
          message,
          parents: [{ id: HASH.a, displayId: HASH.a.slice(0, 11) }],
        }),
      };
    });
    open.push(server);
    return { url: server.url, asked };
  }

  const sources = (api?: Record<string, string>) => [
    { id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] },
    { id: 'dc', platform: 'datacenter', secrets: [SECRETS.dc], ...(api ? { api } : {}) },
  ];

  it('with API credentials the head commit message is read, and skip markers apply', async () => {
    const skipped = newHash();
    const built = newHash();
    const bb = await fakeBitbucketDc(
      new Map([
        [skipped, 'Release 1.4.0 [skip ci]'],
        [built, 'Fix the frobnicator'],
      ]),
    );
    const t = await startTargetServer();
    open.push(t);
    const r = await startRelay(db.url, [target('ci', t.url)], {
      sources: sources({ url: bb.url, token: TOKEN }),
    });
    open.push(r);
    const bare = (toHash: string) => dcRefsChanged({ toHash, withCommits: false });
    const held = await accept(r.ing.url, 'dc', 'repo:refs_changed', bare(skipped));
    const sent = await accept(r.ing.url, 'dc', 'repo:refs_changed', bare(built));
    expect(await r.settled(held, 'ci')).toMatchObject({
      state: 'suppressed',
      reason: 'skip-marker',
      evidence: { rule: 'skip-marker', marker: '[skip ci]', where: 'head commit message' },
    });
    expect((await r.settled(sent, 'ci')).state).toBe('delivered');
    expect(bb.asked.sort()).toEqual(
      [skipped, built].map((id) => `/rest/api/1.0/projects/ACME/repos/widgets/commits/${id}`).sort(),
    );
    const lookups = await r.ing.runtime.metrics.registry.getSingleMetricAsString(
      'hookrelay_commit_message_lookups_total',
    );
    expect(lookups).toContain('source="dc",outcome="fetched"} 2');
    // Guarded after the lookup, each still looked for the routed event its fan-out handed over, so none is left
    // to age. Usually a hit; a miss when the job started before the fan-out's script answer was read.
    const handoff = await r.ing.runtime.metrics.localHandoff.get();
    const routedTakes = handoff.values.filter(
      (v) => v.labels.stage === 'routed' && v.labels.result !== 'dropped',
    );
    expect(routedTakes.reduce((sum, v) => sum + v.value, 0)).toBe(2);
  });

  it('without credentials such pushes are delivered, counted, and the admin warned once per source', async () => {
    const t = await startTargetServer();
    open.push(t);
    const r = await startRelay(db.url, [target('ci', t.url)], { sources: sources() });
    open.push(r);
    const ids = [];
    for (let i = 0; i < 2; i++) {
      ids.push(
        await accept(
          r.ing.url,
          'dc',
          'repo:refs_changed',
          dcRefsChanged({ toHash: newHash(), withCommits: false }),
        ),
      );
    }
    for (const id of ids) expect((await r.settled(id, 'ci')).state).toBe('delivered');
    const warnings = r.logs.lines.filter((l) => String(l.msg).includes('carry no commit message'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ source: 'dc' });
    const missing = await r.ing.runtime.metrics.registry.getSingleMetricAsString(
      'hookrelay_commit_message_missing_total',
    );
    expect(missing).toContain('source="dc"} 2');
  });
});
