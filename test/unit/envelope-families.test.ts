import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import { eventFamily, isKnownEventKey, isWellFormedEventKey } from '../../src/bitbucket/event-keys.js';
import { normalise } from '../../src/bitbucket/normalise.js';
import type { TypeProblems } from '../../src/bitbucket/read-typed.js';
import { buildConfig } from '../../src/config/load-config.js';
import { buildkiteBuilds } from '../../src/delivery/targets/buildkite.js';
import { Router } from '../../src/relay/routing.js';
import { readBody } from '../fixtures/bitbucket/corpus/corpus.js';
import { cloudPullRequest, dcRefsChanged } from '../fixtures/payloads.js';

/** A capture from the corpus (test/fixtures/bitbucket/corpus, see SOURCES.md there), parsed. */
function captured(file: string): unknown {
  return JSON.parse(readBody({ file }).toString('utf8'));
}

const dc = (eventKey: string, payload: unknown, problems?: TypeProblems) =>
  normalise({ platform: 'datacenter', eventKey, deliveryId: 'd', payload }, problems);

describe('event keys', () => {
  it('knows the key live Data Center servers send for "changes requested", and the documented one', () => {
    expect(isKnownEventKey('datacenter', 'pr:reviewer:needs_work')).toBe(true);
    expect(isKnownEventKey('datacenter', 'pr:reviewer:changes_requested')).toBe(true);
    expect(isKnownEventKey('datacenter', 'project:modified')).toBe(true);
    expect(isKnownEventKey('datacenter', 'proj:modified')).toBe(true);
    expect(eventFamily('datacenter', 'pr:reviewer:needs_work')).toBe('pullrequest');
    expect(eventFamily('datacenter', 'mirror:repo_synchronized')).toBe('push');
  });

  it('tells a well-formed unknown key (family other) from a malformed one', () => {
    expect(isWellFormedEventKey('pr:reviewer:something_new')).toBe(true);
    expect(eventFamily('datacenter', 'pr:reviewer:something_new')).toBe('other');
    expect(eventFamily('cloud', 'pullrequest:new_thing')).toBe('other');
    for (const bad of [
      '',
      'push',
      'repo push',
      'repo:',
      ':push',
      'REPO:PUSH',
      'a:b:c:d:e',
      `repo:${'x'.repeat(70)}`,
    ]) {
      expect(isWellFormedEventKey(bad), bad).toBe(false);
    }
  });
});

describe('envelopes of every family', () => {
  it('reads a captured pr:reviewer:needs_work as a pull request event', () => {
    const env = dc('pr:reviewer:needs_work', captured('datacenter/gpw-pr-reviewer-needs-work.json'));
    expect(env.repository).toBe('~gopher/webhook-test');
    expect(env.pullRequest).toMatchObject({
      id: 5,
      sourceBranch: 'feature/wip',
      destinationBranch: 'master',
    });
  });

  it('takes the repository of a DC repo:modified from `new` (the name after a rename), else `old`', () => {
    const payload = captured('datacenter/gpw-repo-modified.json') as { new?: unknown };
    expect(dc('repo:modified', payload).repository).toBe('gopher/webhook-test');
    delete payload.new;
    expect(dc('repo:modified', payload).repository).toBe('gopher/webhook-test-2');
  });

  it('gives a project event its project key and no repository', () => {
    const env = dc('project:modified', {
      eventKey: 'project:modified',
      old: { key: 'OLD', id: 1, name: 'Old' },
      new: { key: 'NEW', id: 1, name: 'New' },
    });
    expect(env.repository).toBeNull();
    expect(env.project).toBe('NEW');
    const cloud = normalise({
      platform: 'cloud',
      eventKey: 'project:updated',
      deliveryId: 'd',
      payload: { project: { key: 'PRJ', type: 'project' }, actor: { nickname: 'x' } },
    });
    expect(cloud).toMatchObject({ repository: null, project: 'PRJ' });
  });

  it('carries the refs of a mirror synchronisation (same `changes` as a push)', () => {
    const payload = { ...dcRefsChanged({ ref: 'release/1' }), eventKey: 'mirror:repo_synchronized' };
    const env = dc('mirror:repo_synchronized', payload);
    expect(env.refs.map((r) => r.name)).toEqual(['release/1']);
    expect(env.repository).toBe('ACME/widgets');
  });

  it('never throws on a wrongly typed field: leaves it out and names the first', () => {
    const payload = dcRefsChanged() as Record<string, unknown>;
    payload.toCommit = { id: 'abc', message: 123 };
    const problems: TypeProblems = {};
    const env = dc('repo:refs_changed', payload, problems);
    expect(env.headCommit).toEqual({ hash: 'abc', message: undefined, author: undefined });
    expect(problems.first).toBe('toCommit.message: must be a string');
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 10_000; i++) at = at[0] = [] as unknown[];
    const title: TypeProblems = {};
    const pr = captured('datacenter/gpw-pr-reviewer-needs-work.json') as { pullRequest: { title: unknown } };
    pr.pullRequest.title = deep;
    expect(dc('pr:reviewer:needs_work', pr, title).pullRequest?.title).toBeUndefined();
    expect(title.first).toBe('pullRequest.title: must be a string');
    expect(() => dc('repo:refs_changed', 'a string')).not.toThrow();
  });

  it('gives Buildkite a text message even when the released payload had a non-string title or message', () => {
    const pr = cloudPullRequest() as { pullrequest: Record<string, unknown> };
    pr.pullrequest.title = { text: 'not a string' };
    const problems: TypeProblems = {};
    const env = normalise(
      { platform: 'cloud', eventKey: 'pullrequest:created', deliveryId: 'd', payload: pr },
      problems,
    );
    expect(problems.first).toBe('pullrequest.title: must be a string');
    const [build] = buildkiteBuilds(env, 'e1', 'k1');
    expect(build?.message).toBe(`Pull request #${env.pullRequest?.id}`);
    const push = dcRefsChanged() as Record<string, unknown>;
    push.toCommit = { id: (push.changes as { toHash: string }[])[0]!.toHash, message: 123 };
    expect(buildkiteBuilds(dc('repo:refs_changed', push), 'e2', 'k2')[0]?.message).toBe(
      'repo:refs_changed main',
    );
  });
});

describe('routing events without repository or refs', () => {
  const config = buildConfig(
    {
      sources: [{ id: 's', platform: 'datacenter', secrets: ['x'] }],
      targets: ['all', 'acme', 'main', 'anyBranch'].map((id) => ({ id, url: `http://t/${id}` })),
      routes: [
        { source: 's', repos: ['*'], targets: ['all'] },
        { source: 's', repos: ['ACME/*'], targets: ['acme'] },
        { source: 's', branches: ['main'], targets: ['main'] },
        { source: 's', branches: ['*'], targets: ['anyBranch'] },
      ],
    },
    {},
  );
  const router = new Router(config);
  const env = (o: Partial<Envelope>): Envelope => ({
    platform: 'datacenter',
    eventKey: 'project:modified',
    deliveryId: 'd',
    repository: null,
    refs: [],
    commits: [],
    ...o,
  });

  it('a lone `*` matches an event with no repository and no refs; other globs do not', () => {
    expect(router.match('s', env({})).targets).toEqual(['all', 'anyBranch']);
    expect(router.match('s', env({ eventKey: 'repo:comment:added', repository: 'ACME/w' })).targets).toEqual([
      'all',
      'acme',
      'anyBranch',
    ]);
  });
});
