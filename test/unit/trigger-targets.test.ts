import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import { buildConfig } from '../../src/config/load-config.js';
import type { TargetConfig } from '../../src/config/types.js';
import { buildRequest, type RequestContext } from '../../src/delivery/build-request.js';
import { classifyError, classifyStatus } from '../../src/delivery/classify.js';
import { retryHintMs } from '../../src/delivery/retry-hints.js';
import { bambooBranchName, bambooParts } from '../../src/delivery/targets/bamboo.js';
import { triggerParameters, triggerRef } from '../../src/delivery/targets/trigger-ref.js';

const HASH = 'a8c13e8850dc60300be720019d1ffc1aa2fded87';

function push(name = 'main', kind: 'branch' | 'tag' = 'branch', newHash: string | null = HASH): Envelope {
  return {
    platform: 'cloud',
    eventKey: 'repo:push',
    deliveryId: 'd',
    repository: 'acme/widgets',
    refs: [
      {
        name,
        kind,
        oldHash: 'b'.repeat(40),
        newHash,
        created: false,
        deleted: newHash === null,
        forced: false,
        truncated: false,
      },
    ],
    commits: [],
  };
}

function pr(eventKey: string, o: Partial<NonNullable<Envelope['pullRequest']>> = {}): Envelope {
  return {
    platform: 'cloud',
    eventKey,
    deliveryId: 'd',
    repository: 'acme/widgets',
    refs: [],
    commits: [],
    pullRequest: {
      id: 7,
      sourceBranch: 'feature/x',
      sourceHash: '0704fc5beccc',
      destinationBranch: 'main',
      mergeCommit: '4f8f6de9d0ff',
      ...o,
    },
  };
}

function target(t: Record<string, unknown>): TargetConfig {
  const config = buildConfig({
    sources: [{ id: 'cloud', platform: 'cloud', secrets: ['s'] }],
    targets: [{ id: 't', ...t }],
    routes: [{ source: 'cloud', targets: ['t'] }],
  });
  return config.targets[0]!;
}

function ctx(t: TargetConfig, envelope: Envelope): RequestContext {
  return {
    target: t,
    event: {
      id: 'ev1',
      sourceId: 'cloud',
      receivedAt: Date.now(),
      envelope,
      headers: {},
      body: Buffer.from('{}'),
      targets: ['t'],
      state: 'routed',
    },
    job: { eventId: 'ev1', targetId: 't', idempotencyKey: 'ev1.t' },
    attempt: 1,
    relayId: 'hookrelay',
  };
}

function sent(t: TargetConfig, envelope: Envelope) {
  const built = buildRequest(ctx(t, envelope));
  if (Array.isArray(built) || 'skip' in built || 'lookup' in built)
    throw new Error(`expected one request, got ${JSON.stringify(built)}`);
  return built;
}

describe('what a trigger builds', () => {
  it('push: the ref at its new head; tag push: the tag; deletion: not applicable', () => {
    expect(triggerRef(push())).toEqual({ kind: 'branch', name: 'main', commit: HASH });
    expect(triggerRef(push('v1.2.0', 'tag'))).toEqual({ kind: 'tag', name: 'v1.2.0', commit: HASH });
    expect(triggerRef(push('old', 'branch', null))).toEqual({ notApplicable: 'branch old deleted' });
  });

  it('PR opened/updated: the source branch; merged: the destination at the merge commit; a comment: nothing', () => {
    for (const key of ['pullrequest:created', 'pullrequest:updated', 'pr:opened', 'pr:from_ref_updated']) {
      expect(triggerRef(pr(key))).toMatchObject({
        kind: 'branch',
        name: 'feature/x',
        commit: '0704fc5beccc',
      });
    }
    for (const key of ['pullrequest:fulfilled', 'pr:merged']) {
      expect(triggerRef(pr(key))).toMatchObject({ kind: 'branch', name: 'main', commit: '4f8f6de9d0ff' });
    }
    expect(triggerRef(pr('pullrequest:comment_created'))).toEqual({
      notApplicable: 'pullrequest:comment_created changes no code',
    });
    expect(triggerRef(pr('pr:declined'))).toHaveProperty('notApplicable');
  });

  it('parameters: absent fields are left out so the receiver keeps its default', () => {
    const ref = triggerRef(pr('pullrequest:created'));
    if ('notApplicable' in ref) throw new Error('applicable');
    expect(
      triggerParameters(
        { B: 'branch', T: 'tag', P: 'pullRequestId' },
        {},
        ref,
        pr('pullrequest:created'),
        'e',
      ),
    ).toEqual({ B: 'feature/x', P: '7' });
  });
});

describe('trigger requests', () => {
  it('github repository_dispatch: event_type and a client_payload of at most ten strings', () => {
    const t = target({
      type: 'github-repository-dispatch',
      url: 'https://api.github.com/repos/acme/widgets/dispatches',
      auth: { type: 'bearer', token: 'ghp_x' },
    });
    const req = sent(t, push('v2', 'tag'));
    expect(req.headers.accept).toBe('application/vnd.github+json');
    expect(req.headers['x-github-api-version']).toBe('2022-11-28');
    expect(req.headers['user-agent']).toBe('hookrelay');
    const body = JSON.parse(req.body.toString());
    expect(body.event_type).toBe('repo:push');
    expect(body.client_payload).toEqual({
      BITBUCKET_TAG: 'v2',
      BITBUCKET_COMMIT: HASH,
      BITBUCKET_REPOSITORY: 'acme/widgets',
      BITBUCKET_EVENT_KEY: 'repo:push',
      HOOKRELAY_EVENT_ID: 'ev1',
    });
    expect(Object.keys(body.client_payload).length).toBeLessThanOrEqual(10);
  });

  it('github workflow_dispatch: ref is the branch, inputs only as configured', () => {
    const base = {
      type: 'github-workflow-dispatch',
      url: 'https://api.github.com/repos/acme/widgets/actions/workflows/ci.yml/dispatches',
    };
    expect(JSON.parse(sent(target(base), push('feature/y')).body.toString())).toEqual({ ref: 'feature/y' });
    const withInputs = target({ ...base, parameters: { sha: 'commit', pr: 'pullRequestId' } });
    expect(JSON.parse(sent(withInputs, pr('pullrequest:updated')).body.toString())).toEqual({
      ref: 'feature/x',
      inputs: { sha: '0704fc5beccc', pr: '7' },
    });
  });

  it('gitlab: a form with token, ref and variables[KEY]', () => {
    const t = target({
      type: 'gitlab-trigger',
      url: 'https://gitlab.com/api/v4/projects/42/trigger/pipeline',
      auth: { type: 'token', token: 'glptt-abc' },
    });
    const req = sent(t, push());
    expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = new URLSearchParams(req.body.toString());
    expect(form.get('token')).toBe('glptt-abc');
    expect(form.get('ref')).toBe('main');
    expect(form.get('variables[BITBUCKET_COMMIT]')).toBe(HASH);
    expect(req.url).not.toContain('glptt-abc');
  });

  it('bitbucket pipelines: a ref target; a custom pipeline on the exact commit, or on the ref for short hashes', () => {
    const url = 'https://api.bitbucket.org/2.0/repositories/acme/widgets/pipelines/';
    expect(
      JSON.parse(sent(target({ type: 'bitbucket-pipelines', url }), push('v1', 'tag')).body.toString()),
    ).toEqual({
      target: { type: 'pipeline_ref_target', ref_type: 'tag', ref_name: 'v1' },
    });
    const custom = target({ type: 'bitbucket-pipelines', url, customPipeline: 'deploy' });
    const body = JSON.parse(sent(custom, push()).body.toString());
    expect(body.target).toEqual({
      type: 'pipeline_commit_target',
      commit: { type: 'commit', hash: HASH },
      selector: { type: 'custom', pattern: 'deploy' },
    });
    expect(body.variables).toContainEqual({ key: 'BITBUCKET_BRANCH', value: 'main', secured: false });
    expect(JSON.parse(sent(custom, pr('pullrequest:created')).body.toString()).target).toEqual({
      type: 'pipeline_ref_target',
      ref_type: 'branch',
      ref_name: 'feature/x',
      selector: { type: 'custom', pattern: 'deploy' },
    });
  });

  it('circleci: branch or tag, parameters only as configured', () => {
    const url = 'https://circleci.com/api/v2/project/bb/acme/widgets/pipeline';
    const t = target({ type: 'circleci', url, auth: { type: 'token', token: 'cc' } });
    expect(JSON.parse(sent(t, push()).body.toString())).toEqual({ branch: 'main' });
    expect(JSON.parse(sent(t, push('v3', 'tag')).body.toString())).toEqual({ tag: 'v3' });
  });

  it('azure pipelines: refName refs/heads or refs/tags, version for a full hash, api-version added', () => {
    const t = target({
      type: 'azure-pipelines',
      url: 'https://dev.azure.com/acme/widgets/_apis/pipelines/12/runs',
      parameters: { branch: 'ref' },
    });
    const req = sent(t, push('v1', 'tag'));
    expect(new URL(req.url).searchParams.get('api-version')).toBe('7.1');
    expect(JSON.parse(req.body.toString())).toEqual({
      resources: { repositories: { self: { refName: 'refs/tags/v1', version: HASH } } },
      templateParameters: { branch: 'v1' },
    });
    const prBody = JSON.parse(sent(t, pr('pr:opened')).body.toString());
    expect(prBody.resources.repositories.self).toEqual({ refName: 'refs/heads/feature/x' });
  });

  it('bamboo: the default branch queues the plan; another branch is looked up first; a tag is not applicable', () => {
    const url = 'https://ci.acme.test/bamboo/rest/api/latest/queue/WID-CI';
    expect(bambooParts(url)).toEqual({ base: 'https://ci.acme.test/bamboo', planKey: 'WID-CI' });
    expect(bambooBranchName('feature/x')).toBe('feature-x');
    const t = target({ type: 'bamboo', url, defaultBranch: 'main' });
    const main = sent(t, push());
    const q = new URL(main.url);
    expect(q.pathname).toBe('/bamboo/rest/api/latest/queue/WID-CI');
    expect(q.searchParams.get('bamboo.variable.BITBUCKET_BRANCH')).toBe('main');
    expect(q.searchParams.get('customRevision')).toBe(HASH);
    const other = buildRequest(ctx(t, push('feature/x')));
    if (!('lookup' in other)) throw new Error('expected a lookup');
    expect(other.lookup.url).toBe('https://ci.acme.test/bamboo/rest/api/latest/plan/WID-CI/branch/feature-x');
    const queued = other.afterLookup(200, '{"key":"WID-CI12","shortName":"feature-x"}');
    expect(queued && 'url' in queued && new URL(queued.url).pathname).toBe(
      '/bamboo/rest/api/latest/queue/WID-CI12',
    );
    expect(other.afterLookup(404, '')).toEqual({
      skip: 'no Bamboo plan branch feature-x of WID-CI',
    });
    expect(other.afterLookup(401, '')).toBeUndefined();
    expect(buildRequest(ctx(t, push('v1', 'tag')))).toHaveProperty('skip');
  });

  it('jenkins job: form parameters from the event', () => {
    const t = target({
      type: 'jenkins-job',
      url: 'https://jenkins.acme.test/job/widgets/buildWithParameters',
      auth: { type: 'basic', username: 'relay', password: '11aa' },
      parameters: { BRANCH: 'branch', PR: 'pullRequestId', KEY: 'eventKey' },
    });
    const form = new URLSearchParams(sent(t, pr('pullrequest:created')).body.toString());
    expect(Object.fromEntries(form)).toEqual({ BRANCH: 'feature/x', PR: '7', KEY: 'pullrequest:created' });
  });

  it('every trigger type sends nothing for a deleted branch', () => {
    const types: Record<string, unknown>[] = [
      { type: 'github-repository-dispatch', url: 'https://api.github.com/repos/a/b/dispatches' },
      {
        type: 'github-workflow-dispatch',
        url: 'https://api.github.com/repos/a/b/actions/workflows/1/dispatches',
      },
      {
        type: 'gitlab-trigger',
        url: 'https://g/api/v4/projects/1/trigger/pipeline',
        auth: { type: 'token', token: 'x' },
      },
      { type: 'bitbucket-pipelines', url: 'https://api.bitbucket.org/2.0/repositories/a/b/pipelines/' },
      {
        type: 'circleci',
        url: 'https://circleci.com/api/v2/project/bb/a/b/pipeline',
        auth: { type: 'token', token: 'x' },
      },
      { type: 'azure-pipelines', url: 'https://dev.azure.com/a/b/_apis/pipelines/1/runs' },
      { type: 'bamboo', url: 'https://b/rest/api/latest/queue/A-B' },
      { type: 'jenkins-job', url: 'https://j/job/x/buildWithParameters' },
    ];
    for (const t of types) {
      expect(buildRequest(ctx(target(t), push('gone', 'branch', null)))).toEqual({
        skip: 'branch gone deleted',
      });
    }
  });
});

describe('trigger config', () => {
  it('names a url that is not the receiver endpoint, and a missing trigger token', () => {
    expect(() =>
      target({ type: 'gitlab-trigger', url: 'https://gitlab.com/api/v4/projects/42/pipeline' }),
    ).toThrow(
      /targets\[0\]\.url: a gitlab-trigger target's url looks like .*trigger\/pipeline[\s\S]*targets\[0\]\.auth/,
    );
    expect(() =>
      target({
        type: 'github-workflow-dispatch',
        url: 'https://api.github.com/repos/a/b/actions/workflows/1/dispatches',
        parameters: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}`, 'ref'])),
      }),
    ).toThrow(/targets\[0\]\.parameters: GitHub accepts at most 10/);
    expect(() =>
      target({
        type: 'jenkins-job',
        url: 'https://j/job/x/buildWithParameters',
        parameters: { 'A B': 'ref' },
      }),
    ).toThrow(/targets\[0\]\.parameters: key "A B" must match/);
    expect(() =>
      target({ type: 'jenkins-job', url: 'https://j/job/x/buildWithParameters', parameters: { A: 'sha' } }),
    ).toThrow(/targets\[0\]\.parameters\.A: must be one of: branch, tag/);
    expect(() => target({ type: 'http', url: 'https://x/hook', customPipeline: 'deploy' })).toThrow(
      /customPipeline: only for type bitbucket-pipelines/,
    );
  });
});

describe('trigger answers', () => {
  const none = { headers: {}, bodyStart: '' };

  it('github: a rate-limited 403 is retried after x-ratelimit-reset; another 403 is permanent', () => {
    const now = 1_700_000_000_000;
    const limited = {
      status: 403,
      headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1700000042' },
    };
    expect(classifyStatus('github-workflow-dispatch', 403, { ...limited, bodyStart: '' }).kind).toBe('retry');
    expect(retryHintMs('github-workflow-dispatch', limited, now)).toBe(42_000);
    const secondary = { headers: {}, bodyStart: '{"message":"You have exceeded a secondary rate limit"}' };
    expect(classifyStatus('github-repository-dispatch', 403, secondary).kind).toBe('retry');
    expect(retryHintMs('github-repository-dispatch', { status: 403, headers: {} }, now)).toBe(60_000);
    expect(classifyStatus('github-repository-dispatch', 403, none)).toEqual({
      kind: 'permanent',
      reason: 'status 403',
    });
    expect(classifyStatus('github-workflow-dispatch', 422, none).kind).toBe('permanent');
  });

  it('gitlab and azure: a 429 waits for the epoch reset when there is no Retry-After', () => {
    const now = 1_700_000_000_000;
    expect(
      retryHintMs('gitlab-trigger', { status: 429, headers: { 'ratelimit-reset': '1700000030' } }, now),
    ).toBe(30_000);
    expect(retryHintMs('gitlab-trigger', { status: 429, headers: { 'retry-after': '5' } }, now)).toBe(5000);
    expect(
      retryHintMs('azure-pipelines', { status: 429, headers: { 'x-ratelimit-reset': '1700000010' } }, now),
    ).toBe(10_000);
  });

  it('azure: 203 (the sign-in page) is a refusal, not a run', () => {
    expect(classifyStatus('azure-pipelines', 203, none)).toEqual({
      kind: 'permanent',
      reason: 'status 203, sign-in page: credentials refused',
    });
    expect(classifyStatus('http', 203, none).kind).toBe('delivered');
  });

  it('a jenkins job 500 and a trigger timeout may have fired; a connect timeout and a plain webhook retry', () => {
    expect(classifyStatus('jenkins-job', 500, none)).toEqual({
      kind: 'permanent',
      reason: 'status 500, may have fired',
    });
    const timeout = new DOMException('x', 'TimeoutError');
    expect(classifyError('circleci', timeout)).toEqual({
      kind: 'permanent',
      reason: 'timeout, may have fired',
    });
    expect(classifyError('circleci', { code: 'UND_ERR_CONNECT_TIMEOUT' })).toEqual({
      kind: 'retry',
      reason: 'timeout',
    });
    expect(classifyError('http', timeout)).toEqual({ kind: 'retry', reason: 'timeout' });
    // A lookup before the trigger (Bamboo's plan branch) that timed out started nothing.
    expect(classifyError('bamboo', timeout, false)).toEqual({ kind: 'retry', reason: 'timeout' });
    expect(classifyError('gitlab-trigger', { code: 'ECONNREFUSED' }).kind).toBe('retry');
  });
});
