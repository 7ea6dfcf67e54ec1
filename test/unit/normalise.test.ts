import { describe, expect, it } from 'vitest';
import { contentKeys, normalise } from '../../src/bitbucket/normalise.js';
import type { TypeProblems } from '../../src/bitbucket/read-typed.js';
import {
  cloudPullRequest,
  cloudPush,
  cloudRepository,
  dcPrMerged,
  dcRefsChanged,
  HASH,
} from '../fixtures/payloads.js';

const base = { deliveryId: 'd-1' };

describe('normalise', () => {
  it('turns a Cloud push into refs, head commit, commits and actor', () => {
    const env = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'repo:push',
      payload: cloudPush({
        message: 'Release it [skip ci]\n',
        author: 'CI Bot <ci@acme.test>',
        actor: 'CI Bot',
      }),
    });
    expect(env.repository).toBe('acme/widgets');
    expect(env.refs).toEqual([
      {
        name: 'main',
        kind: 'branch',
        oldHash: HASH.a,
        newHash: HASH.b,
        created: false,
        deleted: false,
        forced: false,
        truncated: false,
      },
    ]);
    expect(env.headCommit).toMatchObject({
      hash: HASH.b,
      message: 'Release it [skip ci]\n',
      author: { name: 'CI Bot', email: 'ci@acme.test' },
    });
    expect(env.commits).toHaveLength(3);
    expect(env.actor?.name).toBe('CI');
    expect(env.actor?.uuid).toMatch(/^\{.*\}$/);
  });

  it('a Cloud commit author: the raw "Name <email>" names it, the linked account adds its ids or a missing name', () => {
    const payload = cloudPush();
    const head = payload.push.changes[0]!.new!.target as { author: unknown };
    const author = (raw: string, user?: object) => {
      head.author = { type: 'author', raw, ...(user ? { user } : {}) };
      return normalise({ ...base, platform: 'cloud', eventKey: 'repo:push', payload }).headCommit?.author;
    };
    const bot = { nickname: 'ci-bot', account_id: '557058:b07', uuid: '{b0b0b0b0}' };
    expect(author('Release Bot <bot@ci.acme.test>', bot)).toEqual({
      name: 'Release Bot',
      email: 'bot@ci.acme.test',
      accountId: '557058:b07',
      uuid: '{b0b0b0b0}',
    });
    // Only an email in the raw author: the name comes from the linked account (a nickname pattern can match).
    expect(author('<bot@ci.acme.test>', bot)).toMatchObject({ name: 'ci-bot', email: 'bot@ci.acme.test' });
    const unlinked = author('Someone <someone@example.test>');
    expect(unlinked).toMatchObject({ name: 'Someone', email: 'someone@example.test' });
    expect(unlinked?.accountId).toBeUndefined();
    expect(author('just a name')).toMatchObject({ name: 'just a name' });
  });

  it('marks forced and truncated pushes, tag creation and branch deletion', () => {
    const forced = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'repo:push',
      payload: cloudPush({ forced: true, truncated: true }),
    });
    expect(forced.refs[0]).toMatchObject({ forced: true, truncated: true });
    const tag = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'repo:push',
      payload: cloudPush({ kind: 'tag', ref: 'v2', oldHash: null }),
    });
    expect(tag.refs[0]).toMatchObject({
      kind: 'tag',
      name: 'v2',
      created: true,
      oldHash: null,
      newHash: HASH.b,
    });
    const del = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'repo:push',
      payload: cloudPush({ newHash: null }),
    });
    expect(del.refs[0]).toMatchObject({ deleted: true, newHash: null, oldHash: HASH.a });
    expect(del.headCommit).toBeUndefined();
  });

  it('reads Data Center refs_changed with and without commits (older servers send none)', () => {
    const recent = normalise({
      ...base,
      platform: 'datacenter',
      eventKey: 'repo:refs_changed',
      payload: dcRefsChanged({ message: 'Bump [ci skip]' }),
    });
    expect(recent.repository).toBe('ACME/widgets');
    expect(recent.headCommit).toMatchObject({
      hash: HASH.b,
      message: 'Bump [ci skip]',
      author: { email: 'amuniz@acme.test' },
    });
    const old = normalise({
      ...base,
      platform: 'datacenter',
      eventKey: 'repo:refs_changed',
      payload: dcRefsChanged({ withCommits: false }),
    });
    expect(old.headCommit).toBeUndefined();
    expect(old.commits).toEqual([]);
    const created = normalise({
      ...base,
      platform: 'datacenter',
      eventKey: 'repo:refs_changed',
      payload: dcRefsChanged({ type: 'ADD', kind: 'TAG', ref: 'v1' }),
    });
    expect(created.refs[0]).toMatchObject({ kind: 'tag', created: true, oldHash: null });
  });

  it('keeps the short merge commit hash of a Cloud PR and the full one of a DC merge', () => {
    const cloud = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'pullrequest:fulfilled',
      payload: cloudPullRequest(),
    });
    expect(cloud.pullRequest).toMatchObject({
      id: 7,
      state: 'MERGED',
      mergeCommit: HASH.merge.slice(0, 12),
      sourceBranch: 'feature/thing',
      destinationBranch: 'main',
    });
    expect(cloud.pullRequest?.mergeCommit).toHaveLength(12);
    const dc = normalise({ ...base, platform: 'datacenter', eventKey: 'pr:merged', payload: dcPrMerged() });
    expect(dc.repository).toBe('ACME/widgets');
    expect(dc.pullRequest).toMatchObject({ id: 3, mergeCommit: HASH.merge, sourceHash: HASH.c });
  });

  it('a pull request names its author, and its source repository only when that is a fork', () => {
    const cloud = (payload: unknown) =>
      normalise({ platform: 'cloud', eventKey: 'pullrequest:created', deliveryId: 'd', payload })
        .pullRequest!;
    const same = cloudPullRequest({ state: 'OPEN', mergeCommit: null });
    expect(cloud(same)).toMatchObject({ author: { name: 'Ada' }, forkRepository: undefined });
    const fork = cloudPullRequest({ state: 'OPEN', mergeCommit: null });
    fork.pullrequest.source.repository = cloudRepository('ada/widgets');
    expect(cloud(fork).forkRepository).toBe('https://bitbucket.org/ada/widgets.git');

    const dc = (payload: unknown) =>
      normalise({ platform: 'datacenter', eventKey: 'pr:opened', deliveryId: 'd', payload }).pullRequest!;
    const dcSame = dcPrMerged();
    expect(dc(dcSame)).toMatchObject({ author: { name: 'amuniz', email: 'amuniz@acme.test' } });
    expect(dc(dcSame).forkRepository).toBeUndefined();
    const dcFork = dcPrMerged();
    dcFork.pullRequest.fromRef.repository = {
      ...dcFork.pullRequest.fromRef.repository,
      id: 2,
      links: {
        ...dcFork.pullRequest.fromRef.repository.links,
        clone: [
          { href: 'ssh://git@bitbucket.acme.test:7999/~ada/widgets.git', name: 'ssh' },
          { href: 'https://bitbucket.acme.test/scm/~ada/widgets.git', name: 'http' },
        ],
      },
    };
    expect(dc(dcFork).forkRepository).toBe('https://bitbucket.acme.test/scm/~ada/widgets.git');
  });

  it('a pull request author or fork of the wrong type is left out and named for the quarantine', () => {
    const problems = (payload: unknown, platform: 'cloud' | 'datacenter', eventKey: string) => {
      const found: TypeProblems = {};
      const pr = normalise({ platform, eventKey, deliveryId: 'd', payload }, found).pullRequest;
      return { pr, first: found.first };
    };
    const cloud = cloudPullRequest({ state: 'OPEN', mergeCommit: null });
    (cloud.pullrequest.author as Record<string, unknown>).nickname = 42;
    const fork: Record<string, unknown> = cloudRepository('ada/widgets');
    fork.links = { html: { href: 7 } };
    cloud.pullrequest.source.repository = fork as ReturnType<typeof cloudRepository>;
    const cloudRead = problems(cloud, 'cloud', 'pullrequest:created');
    expect(cloudRead.first).toBe('pullrequest.author.nickname: must be a string');
    expect(cloudRead.pr?.forkRepository).toBe('https://bitbucket.org/ada/widgets.git');

    const dc = dcPrMerged();
    const dcFork: Record<string, unknown> = { ...dc.pullRequest.fromRef.repository, id: 2 };
    dcFork.links = { clone: 'x' };
    dc.pullRequest.fromRef.repository = dcFork as typeof dc.pullRequest.fromRef.repository;
    const dcRead = problems(dc, 'datacenter', 'pr:opened');
    expect(dcRead.first).toBe('pullRequest.fromRef.repository.links.clone: must be an array');
    expect(dcRead.pr?.forkRepository).toBeUndefined();
  });

  it('keys pushes per ref, tagged with the transition, and other events on their content', () => {
    const push = (p: unknown, id: string) =>
      normalise({ platform: 'datacenter', eventKey: 'repo:refs_changed', deliveryId: id, payload: p });
    const body = 'hash-of-{}';
    const [a] = contentKeys('dc', push(dcRefsChanged(), 'x'), body);
    expect(contentKeys('dc', push(dcRefsChanged(), 'y'), 'hash-of-other')).toEqual([a]);
    expect(a!.tag).toBe(`${HASH.a}>${HASH.b}`);
    // The same ref moving elsewhere: same key (the ref), another tag (the transition).
    const [moved] = contentKeys('dc', push(dcRefsChanged({ toHash: HASH.c }), 'x'), body);
    expect(moved!.key).toBe(a!.key);
    expect(moved!.tag).not.toBe(a!.tag);
    expect(contentKeys('other-source', push(dcRefsChanged(), 'x'), body)[0]!.key).not.toBe(a!.key);
    expect(contentKeys('dc', push(dcRefsChanged({ ref: 'dev' }), 'x'), body)[0]!.key).not.toBe(a!.key);
    const pr = normalise({
      ...base,
      platform: 'cloud',
      eventKey: 'pullrequest:comment_created',
      payload: cloudPullRequest(),
    });
    expect(contentKeys('c', pr, 'hash-a')[0]!.key).not.toBe(contentKeys('c', pr, 'hash-b')[0]!.key);
    expect(contentKeys('c', pr, 'hash-a')[0]!.tag).toBe('');
  });
});
