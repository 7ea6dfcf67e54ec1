import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import type { TargetConfig } from '../../src/config/types.js';
import { notApplicable } from '../../src/delivery/applicable.js';
import { coalesceRef } from '../../src/delivery/coalesce.js';
import { retryHintMs } from '../../src/delivery/retry-hints.js';
import { secretProblem, webhookId } from '../../src/delivery/signing.js';
import { buildkiteBuilds } from '../../src/delivery/targets/buildkite.js';
import { pprAccepts, pprUrl } from '../../src/delivery/targets/jenkins-bitbucket.js';
import { branchSourceUrl } from '../../src/delivery/targets/jenkins-branch-source.js';
import { teamcityUrl } from '../../src/delivery/targets/teamcity.js';
import { actorMatcher, mergeMarks, StaticLoopRules } from '../../src/relay/loop-rules.js';

const HASH = 'a8c13e8850dc60300be720019d1ffc1aa2fded87';

function push(o: Partial<Envelope> = {}): Envelope {
  return {
    platform: 'cloud',
    eventKey: 'repo:push',
    deliveryId: 'd',
    repository: 'acme/widgets',
    refs: [
      {
        name: 'main',
        kind: 'branch',
        oldHash: 'b'.repeat(40),
        newHash: HASH,
        created: false,
        deleted: false,
        forced: false,
        truncated: false,
      },
    ],
    headCommit: { hash: HASH, message: 'Fix it\n', author: { name: 'Ada', email: 'ada@acme.test' } },
    commits: [{ hash: HASH, message: 'Fix it\n', author: { name: 'Ada', email: 'ada@acme.test' } }],
    actor: { name: 'Ada', uuid: '{7d3a178a-a087-4756-b2da-2f9eadf50ba8}', accountId: '557058:abc' },
    ...o,
  };
}

const loop = {
  skipMarkers: ['[skip ci]', '[ci skip]', '***NO_CI***'],
  ignoreActors: ['*@ci.acme.test', '{11111111-a087-4756-b2da-2f9eadf50ba8}', 'jenkins*'],
  maxTriggersPerRef: { count: 3, window: 60_000 },
  collapseMergePush: true,
  collapseWindow: 600_000,
  collapseWait: 15_000,
  chain: { maxTurns: 3, memory: 3600_000, actors: ['*'] },
};

describe('loop guard rules', () => {
  const rules = new StaticLoopRules(loop);

  it('skip markers in the head commit message, any case', () => {
    expect(rules.check(push({ headCommit: { hash: HASH, message: 'Bump version [Skip CI]' } }))).toBe(
      'skip-marker',
    );
    expect(rules.check(push({ headCommit: { hash: HASH, message: 'release ***NO_CI***' } }))).toBe(
      'skip-marker',
    );
    expect(rules.check(push())).toBeNull();
  });

  it('ignored actors by uuid (braces literal), name glob, or every new commit authored by a bot', () => {
    expect(rules.check(push({ actor: { uuid: '{11111111-a087-4756-b2da-2f9eadf50ba8}' } }))).toBe(
      'ignored-actor',
    );
    expect(rules.check(push({ actor: { name: 'Jenkins CI' } }))).toBe('ignored-actor');
    const bot = { name: 'Build Bot', email: 'build@ci.acme.test' };
    expect(
      rules.check(
        push({
          commits: [
            { hash: HASH, author: bot },
            { hash: 'c'.repeat(40), author: bot },
          ],
        }),
      ),
    ).toBe('ignored-actor');
    // One human commit among the bot's: a real change, delivered.
    expect(
      rules.check(
        push({
          commits: [
            { hash: HASH, author: bot },
            { hash: 'c'.repeat(40), author: { email: 'ada@acme.test' } },
          ],
        }),
      ),
    ).toBeNull();
  });

  it('actor patterns compare account id, uuid, name and email without case', () => {
    const m = actorMatcher(['557058:*', 'ADA@ACME.TEST']);
    expect(m({ accountId: '557058:abc' })).toBe(true);
    expect(m({ email: 'ada@acme.test' })).toBe(true);
    expect(m({ name: 'someone' })).toBe(false);
    expect(m(undefined)).toBe(false);
  });

  it('merge marks: a merge (12-char hash) and the push of its merge commit (40-char) share a key', () => {
    const merged: Envelope = {
      platform: 'cloud',
      eventKey: 'pullrequest:fulfilled',
      deliveryId: 'x',
      repository: 'acme/widgets',
      refs: [],
      commits: [],
      pullRequest: { id: 7, destinationBranch: 'main', mergeCommit: HASH.slice(0, 12) },
    };
    expect(mergeMarks(merged)).toEqual(mergeMarks(push()));
    // A new branch at an existing commit is never a merge's push.
    expect(mergeMarks(push({ refs: [{ ...push().refs[0]!, created: true }] }))).toEqual([]);
  });

  it('coalescing takes part only for single-branch pushes', () => {
    expect(coalesceRef(push())).toBe('main');
    expect(coalesceRef(push({ refs: [{ ...push().refs[0]!, kind: 'tag' }] }))).toBeNull();
    expect(coalesceRef(push({ refs: [] }))).toBeNull();
  });
});

describe('target requests', () => {
  it('teamcity: the endpoint is appended to the base url with the locator', () => {
    expect(teamcityUrl('https://tc.acme.test/', 'vcsRoot:(type:jetbrains.git)')).toBe(
      'https://tc.acme.test/app/rest/vcs-root-instances/commitHookNotification?locator=vcsRoot%3A%28type%3Ajetbrains.git%29',
    );
    expect(
      teamcityUrl('https://ci.acme.test/tc/app/rest/vcs-root-instances/commitHookNotification', 'x'),
    ).toBe('https://ci.acme.test/tc/app/rest/vcs-root-instances/commitHookNotification?locator=x');
  });

  it('buildkite: a push builds each pushed ref at its new head; a merge the destination at the merge commit', () => {
    const [build, ...more] = buildkiteBuilds(push(), 'e1', 'e1.bk');
    expect(more).toEqual([]);
    expect(build).toMatchObject({
      commit: HASH,
      branch: 'main',
      message: 'Fix it',
      author: { name: 'Ada', email: 'ada@acme.test' },
      meta_data: { hookrelay_idempotency_key: 'e1.bk', hookrelay_ref: 'branch:main' },
    });
    // A branch and a tag pushed together: two builds, the tag named as its branch; a deleted ref: none.
    const tagHash = 'c'.repeat(40);
    const both = buildkiteBuilds(
      push({
        refs: [
          push().refs[0]!,
          { ...push().refs[0]!, name: 'v1.2.0', kind: 'tag', oldHash: null, newHash: tagHash, created: true },
          { ...push().refs[0]!, name: 'old', newHash: null, deleted: true },
        ],
      }),
      'e5',
      'e5.bk',
    );
    expect(both.map((b) => [b.branch, b.commit, b.meta_data.hookrelay_ref, b.env.BITBUCKET_TAG])).toEqual([
      ['main', HASH, 'branch:main', undefined],
      ['v1.2.0', tagHash, 'tag:v1.2.0', 'v1.2.0'],
    ]);
    const pr: Envelope = {
      ...push({ refs: [], headCommit: undefined, commits: [] }),
      eventKey: 'pullrequest:created',
      pullRequest: {
        id: 7,
        title: 'Feature',
        sourceBranch: 'feature/x',
        sourceHash: 'abc123def456',
        destinationBranch: 'main',
        author: { name: 'Ada' },
        forkRepository: 'https://bitbucket.org/ada/widgets.git',
      },
    };
    const [prBuild] = buildkiteBuilds(pr, 'e2', 'e2.bk');
    expect(prBuild).toMatchObject({
      commit: 'abc123def456',
      branch: 'feature/x',
      pull_request_id: 7,
      pull_request_base_branch: 'main',
      pull_request_repository: 'https://bitbucket.org/ada/widgets.git',
    });
    // A name without an email is no author Buildkite takes: the token's user stays.
    expect(prBuild!.author).toBeUndefined();
    expect(
      buildkiteBuilds(
        {
          ...pr,
          eventKey: 'pullrequest:fulfilled',
          pullRequest: { ...pr.pullRequest!, mergeCommit: 'fedcba987654' },
        },
        'e3',
        'e3.bk',
      ),
    ).toMatchObject([{ commit: 'fedcba987654', branch: 'main' }]);
    // A deleted branch: nothing to build.
    expect(
      buildkiteBuilds(push({ refs: [{ ...push().refs[0]!, newHash: null, deleted: true }] }), 'e4', 'e4.bk'),
    ).toEqual([]);
  });

  it('buildkite: a 429 waits for the reset of the limit that is spent, else the later one', () => {
    const limited = (headers: Record<string, string>) => retryHintMs('buildkite', { status: 429, headers });
    expect(limited({ 'ratelimit-reset': '42', 'ratelimit-remaining': '0' })).toBe(42_000);
    expect(
      limited({
        'ratelimit-reset': '50',
        'ratelimit-remaining': '80',
        'ratelimit-user-reset': '7',
        'ratelimit-user-remaining': '0',
      }),
    ).toBe(7_000);
    expect(limited({ 'ratelimit-reset': '50', 'ratelimit-user-reset': '7' })).toBe(50_000);
    expect(limited({ 'ratelimit-reset': 'soon' })).toBeUndefined();
    // Retry-After wins when the answer has one; only a 429 is a rate limit.
    expect(limited({ 'retry-after': '3', 'ratelimit-reset': '50' })).toBe(3_000);
    expect(retryHintMs('buildkite', { status: 503, headers: { 'ratelimit-reset': '50' } })).toBeUndefined();
  });

  it('jenkins-branch-source: server_url only on Data Center events; jenkins-bitbucket: the trailing slash', () => {
    expect(branchSourceUrl('https://ci.acme.test/jenkins/', 'datacenter', 'https://bb.acme.test')).toBe(
      'https://ci.acme.test/jenkins/bitbucket-scmsource-hook/notify?server_url=https%3A%2F%2Fbb.acme.test',
    );
    expect(
      branchSourceUrl('https://ci.acme.test/bitbucket-scmsource-hook/notify?server_url=x', 'cloud'),
    ).toBe('https://ci.acme.test/bitbucket-scmsource-hook/notify');
    expect(pprUrl('https://ci.acme.test/jenkins')).toBe('https://ci.acme.test/jenkins/bitbucket-hook/');
    expect(pprUrl('https://ci.acme.test/bitbucket-hook')).toBe('https://ci.acme.test/bitbucket-hook/');
  });

  it('jenkins-bitbucket: the keys the plugin parses, as its own check reads them', () => {
    for (const key of [
      'repo:push',
      'repo:refs_changed',
      'pullrequest:comment_reopened',
      'pr:reviewer:approved',
      'pr:comment:added',
      'pr:reviewer:updated',
      'diagnostics:ping',
    ]) {
      expect(pprAccepts(key), key).toBe(true);
    }
    for (const key of [
      'repo:fork',
      'pr:deleted',
      'pr:reviewer:unapproved',
      'pr:comment:edited',
      'issue:created',
    ]) {
      expect(pprAccepts(key), key).toBe(false);
    }
  });

  it('not applicable: outside the target events, or a key its receiver does not process', () => {
    const t = (o: Partial<TargetConfig>) => ({ id: 'x', type: 'http', ...o }) as TargetConfig;
    expect(notApplicable(t({ events: ['repo:push', 'pullrequest:*'] }), 'pullrequest:created')).toBeNull();
    expect(notApplicable(t({ events: ['repo:push'] }), 'pullrequest:created')).toMatch(
      /not in the target's events/,
    );
    expect(notApplicable(t({ type: 'jenkins-branch-source' }), 'pullrequest:approved')).toMatch(
      /Branch Source/,
    );
    expect(notApplicable(t({ type: 'jenkins-branch-source' }), 'pr:from_ref_updated')).toBeNull();
    expect(notApplicable(t({ type: 'http' }), 'pullrequest:approved')).toBeNull();
  });
});

describe('standard webhooks', () => {
  it('secrets are whsec_ + base64 of 24 to 64 bytes', () => {
    const of = (n: number) => `whsec_${Buffer.alloc(n, 7).toString('base64')}`;
    expect(secretProblem(of(24))).toBeNull();
    expect(secretProblem(of(64))).toBeNull();
    expect(secretProblem(of(23))).toMatch(/24 to 64/);
    expect(secretProblem(of(65))).toMatch(/24 to 64/);
    expect(secretProblem('a'.repeat(64))).toMatch(/whsec_/);
    expect(secretProblem('whsec_not base64!')).toMatch(/base64/);
  });

  it('webhook-id: stable for a key and part, never a dot, different per part and key', () => {
    const id = webhookId('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.ci');
    expect(id).toBe(webhookId('0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b.ci'));
    expect(id).toMatch(/^msg_[A-Za-z0-9_-]+$/);
    expect(webhookId('k', 'tag:v1')).not.toBe(webhookId('k', 'branch:main'));
    expect(webhookId('k')).not.toBe(webhookId('k2'));
  });
});
