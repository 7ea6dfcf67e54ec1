import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import { coalesceRef } from '../../src/delivery/coalesce.js';
import { actorMatcher, mergeMarks, StaticLoopRules } from '../../src/delivery/loop-rules.js';
import { buildkiteBuild } from '../../src/delivery/targets/buildkite.js';
import { teamcityUrl } from '../../src/delivery/targets/teamcity.js';

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
  maxTriggersPerRef: { count: 3, windowSeconds: 60 },
  collapseMergePush: true,
  collapseWindowSeconds: 600,
  collapseWaitSeconds: 15,
  chain: { maxTurns: 3, memorySeconds: 3600, actors: ['*'] },
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

  it('buildkite: a push builds its branch at the new head; a merge the destination at the merge commit', () => {
    expect(buildkiteBuild(push(), 'e1')).toMatchObject({ commit: HASH, branch: 'main', message: 'Fix it' });
    const pr: Envelope = {
      ...push({ refs: [], headCommit: undefined, commits: [] }),
      eventKey: 'pullrequest:created',
      pullRequest: {
        id: 7,
        title: 'Feature',
        sourceBranch: 'feature/x',
        sourceHash: 'abc123def456',
        destinationBranch: 'main',
      },
    };
    expect(buildkiteBuild(pr, 'e2')).toMatchObject({
      commit: 'abc123def456',
      branch: 'feature/x',
      pull_request_id: 7,
      pull_request_base_branch: 'main',
    });
    expect(
      buildkiteBuild(
        {
          ...pr,
          eventKey: 'pullrequest:fulfilled',
          pullRequest: { ...pr.pullRequest!, mergeCommit: 'fedcba987654' },
        },
        'e3',
      ),
    ).toMatchObject({ commit: 'fedcba987654', branch: 'main' });
    // A deleted branch: nothing to build.
    expect(
      buildkiteBuild(push({ refs: [{ ...push().refs[0]!, newHash: null, deleted: true }] }), 'e4'),
    ).toBeNull();
  });
});
