import { describe, expect, it } from 'vitest';
import type { Envelope, RefChange } from '../../src/bitbucket/envelope.js';
import { classifyStatus } from '../../src/delivery/classify.js';
import { explain } from '../../src/delivery/explain.js';
import { branchTransition } from '../../src/relay/branch-transition.js';
import {
  actorDigest,
  chainParents,
  deliveredHeads,
  jobGuard,
  StaticLoopRules,
} from '../../src/relay/loop-rules.js';

const OLD = 'b'.repeat(40);
const NEW = 'c'.repeat(40);
const OTHER = 'd'.repeat(40);

const ref = (o: Partial<RefChange> = {}): RefChange => ({
  name: 'main',
  kind: 'branch',
  oldHash: OLD,
  newHash: NEW,
  created: false,
  deleted: false,
  forced: false,
  truncated: false,
  ...o,
});

function push(o: Partial<Envelope> = {}): Envelope {
  return {
    platform: 'cloud',
    eventKey: 'repo:push',
    deliveryId: 'd',
    repository: 'acme/widgets',
    refs: [ref()],
    headCommit: { hash: NEW, message: 'Fix it\n', parents: [OLD] },
    commits: [],
    actor: { name: 'CI', uuid: '{b0b0}' },
    ...o,
  };
}

function merged(o: Partial<Envelope> = {}): Envelope {
  return {
    platform: 'datacenter',
    eventKey: 'pr:merged',
    deliveryId: 'd',
    repository: 'ACME/widgets',
    refs: [],
    commits: [],
    pullRequest: { id: 3, title: 'Bump deps', destinationBranch: 'main', mergeCommit: NEW },
    actor: { name: 'merge-bot', uuid: 'merge-bot' },
    ...o,
  };
}

const loop = {
  skipMarkers: ['[skip ci]'],
  ignoreActors: ['merge-bot'],
  maxTriggersPerRef: { count: 3, window: 60_000 },
  collapseMergePush: true,
  collapseWindow: 600_000,
  collapseWait: 15_000,
  chain: { maxTurns: 3, memory: 3600_000, actors: ['*'] },
};

describe('causal chain inputs', () => {
  it('a push builds on its old head, its new head (a tag or fast-forward onto a built commit) and the head parents', () => {
    const merge = push({ headCommit: { hash: NEW, parents: [OLD, OTHER] } });
    expect(chainParents(merge)).toEqual(['b'.repeat(12), 'c'.repeat(12), 'd'.repeat(12)]);
    const tag = push({ refs: [ref({ kind: 'tag', name: 'v1', oldHash: null, created: true })] });
    expect(chainParents(tag)).toContain('c'.repeat(12));
    expect(
      chainParents(push({ refs: [ref({ deleted: true, newHash: null })], headCommit: undefined })),
    ).toEqual([]);
  });

  it('what a delivery built: new heads of a push, the merge commit of a merged PR (12-character prefixes)', () => {
    expect(deliveredHeads(push())).toEqual(['c'.repeat(12)]);
    expect(deliveredHeads(merged({ pullRequest: { id: 1, mergeCommit: 'e'.repeat(12) } }))).toEqual([
      'e'.repeat(12),
    ]);
    expect(deliveredHeads(push({ refs: [ref({ deleted: true, newHash: null })] }))).toEqual([]);
  });

  it('an actor digest is the same for one identity whatever the case, different for another', () => {
    expect(actorDigest({ uuid: '{B0B0}' })).toBe(actorDigest({ uuid: '{b0b0}', name: 'other name' }));
    expect(actorDigest({ uuid: '{b0b0}' })).not.toBe(actorDigest({ uuid: '{b0b1}' }));
    expect(actorDigest(undefined)).toBe('-');
  });

  it('job inputs: source, actor, parents and the chain flag only for actors in loop.chain.actors', () => {
    const rules = new StaticLoopRules({ ...loop, chain: { ...loop.chain, actors: ['ci*'] } });
    const g = jobGuard(rules, push(), 'cloud', 1000);
    expect(g).toMatchObject({ source: 'cloud', receivedAt: 1000, actorName: 'CI', chain: true });
    expect(g.parents).toEqual(chainParents(push()));
    expect(jobGuard(rules, push({ actor: { name: 'Ada' } }), 'cloud', 1).chain).toBeUndefined();
    expect(jobGuard(rules, merged(), 'dc', 1)).toMatchObject({ merge: true, staticVerdict: 'ignored-actor' });
  });

  it("job inputs carry a single-branch push's move, for the branch order checked with the guard's read", () => {
    const rules = new StaticLoopRules(loop);
    expect(jobGuard(rules, push(), 'cloud', 1).branch).toEqual(branchTransition(push()));
    expect(jobGuard(rules, push(), 'cloud', 1).branch).toMatchObject({ oldHash: OLD, newHash: NEW });
    const tag = push({ refs: [ref({ kind: 'tag', name: 'v1', oldHash: null, created: true })] });
    expect(jobGuard(rules, tag, 'cloud', 1).branch).toBeUndefined();
    expect(jobGuard(rules, merged(), 'cloud', 1).branch).toBeUndefined();
  });
});

describe('static rules on pushes', () => {
  const rules = new StaticLoopRules({ ...loop, ignoreActors: ['merge-bot', '*@ci.acme.test'] });
  const human = { name: 'Ada', email: 'ada@acme.test' };
  const bot = { name: 'Release Bot', email: 'release@CI.acme.test' };
  const commit = (author: typeof human) => ({ hash: NEW, message: 'Bump\n', parents: [OLD], author });

  it('a skip marker in the head commit message holds the push, naming the marker', () => {
    const env = push({ headCommit: { hash: NEW, message: 'Release 1.2 [skip ci]\n', parents: [OLD] } });
    expect(rules.verdict(env)).toEqual({
      reason: 'skip-marker',
      evidence: { rule: 'skip-marker', marker: '[skip ci]', where: 'head commit message' },
    });
  });

  it('a pusher matching ignoreActors holds the push', () => {
    expect(rules.verdict(push({ actor: { name: 'merge-bot' } }))).toEqual({
      reason: 'ignored-actor',
      evidence: { rule: 'ignored-actor', actor: 'merge-bot', where: 'pusher' },
    });
  });

  it('a bot pushing through a human’s credentials is known by its commits: all of them, not some', () => {
    const byBot = push({ actor: human, commits: [commit(bot), commit(bot)] });
    expect(rules.verdict(byBot)?.evidence).toMatchObject({ where: 'author of every new commit' });
    expect(rules.check(push({ actor: human, commits: [commit(bot), commit(human)] }))).toBeNull();
  });

  it('a push with neither marker nor ignored identity passes; without ignoreActors only markers count', () => {
    expect(rules.check(push({ actor: human }))).toBeNull();
    const markersOnly = new StaticLoopRules({ ...loop, ignoreActors: [] });
    expect(markersOnly.check(push({ actor: { name: 'merge-bot' } }))).toBeNull();
  });

  it('a looked-up head message is judged when the payload had none', () => {
    const bare = push({ platform: 'datacenter', headCommit: { hash: NEW, parents: [OLD] } });
    expect(rules.check(bare)).toBeNull();
    expect(rules.check(bare, 'chore [skip ci]')).toBe('skip-marker');
  });
});

describe('static rules on merged pull requests', () => {
  const rules = new StaticLoopRules(loop);

  it('the merging actor matched against ignoreActors, the title against the skip markers', () => {
    expect(rules.verdict(merged())).toEqual({
      reason: 'ignored-actor',
      evidence: { rule: 'ignored-actor', actor: 'merge-bot', where: 'merging actor' },
    });
    const titled = merged({
      actor: { name: 'Ada' },
      pullRequest: { id: 3, title: 'Bump deps [Skip CI]', destinationBranch: 'main', mergeCommit: NEW },
    });
    expect(rules.verdict(titled)).toEqual({
      reason: 'skip-marker',
      evidence: { rule: 'skip-marker', marker: '[skip ci]', where: 'pull request title' },
    });
    expect(rules.check(merged({ actor: { name: 'Ada' } }))).toBeNull();
  });

  it('a push without a message in its payload is judged on a looked-up message', () => {
    const bare = push({ headCommit: undefined });
    expect(rules.check(bare)).toBeNull();
    expect(rules.check(bare, 'Release 1.2 [skip ci]')).toBe('skip-marker');
  });
});

describe('relay loops, ordering and explanations', () => {
  it('508 from a target is permanent, "relay loop (508)"; other 5xx are retried', () => {
    expect(classifyStatus('http', 508)).toEqual({ kind: 'permanent', reason: 'relay loop (508)' });
    expect(classifyStatus('jenkins-generic', 508)).toEqual({ kind: 'permanent', reason: 'relay loop (508)' });
    expect(classifyStatus('http', 507).kind).toBe('retry');
  });

  it('only a single-branch push that leaves a head is ordered', () => {
    expect(branchTransition(push())).toEqual({ ref: 'main', oldHash: OLD, newHash: NEW });
    expect(branchTransition(push({ refs: [ref({ created: true, oldHash: null })] }))).toEqual({
      ref: 'main',
      oldHash: '',
      newHash: NEW,
    });
    expect(branchTransition(push({ refs: [ref({ kind: 'tag' })] }))).toBeNull();
    expect(branchTransition(push({ refs: [ref({ deleted: true, newHash: null })] }))).toBeNull();
    expect(branchTransition(push({ refs: [ref(), ref({ name: 'dev' })] }))).toBeNull();
  });

  it('each rule explains itself from its evidence', () => {
    expect(
      explain({
        rule: 'chain-loop',
        actor: 'CI',
        parentCommit: 'abc',
        turns: 3,
        maxTurns: 3,
        memorySeconds: 60,
      }),
    ).toBe(
      'CI pushed on abc, a commit this relay delivered to this target, 3 times in a row (loop.chain.maxTurns 3; turns remembered 60 s)',
    );
    expect(explain({ rule: 'ref-rate', actor: 'CI', ref: 'main', count: 2, windowSeconds: 60 })).toBe(
      'CI pushed to main more than 2 times within 60 s (loop.maxTriggersPerRef)',
    );
    expect(explain({ rule: 'merge-push-verdict', pushEvent: 'e1', pushReason: 'skip-marker' })).toBe(
      "inherits the verdict of its merge commit's push (event e1): skip-marker",
    );
    expect(
      explain({ rule: 'superseded', newerEvent: 'e2', newerHead: 'c0ffee', action: 'skipped' }),
    ).toContain('not sent (skipSuperseded)');
    expect(explain({ rule: 'something-new', count: 1 })).toBe('rule=something-new count=1');
  });
});
