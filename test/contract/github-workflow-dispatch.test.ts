import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, HASH } from '../fixtures/payloads.js';
import { GITHUB_TOKEN, githubBody, githubCheck, invalid, NO_CONTENT } from './helpers/github.js';
import { json, useContract } from './helpers/receiver.js';

const PATH = /^\/repos\/acme\/widgets\/actions\/workflows\/ci\.yml\/dispatches$/;

// The workflow file the fake stands for: `on: workflow_dispatch: inputs: {sha, pr}`. GitHub refuses a
// dispatch with an input the workflow does not declare (422 "Unexpected inputs provided"), more than 10 inputs
// (github/rest-api-description: "The maximum number of properties is 10"), and a ref it cannot find (422 "No
// ref found for"). Inputs are strings, numbers or booleans.
const DECLARED = new Set(['sha', 'pr']);
const REFS = new Set(['main', 'feature/x', 'feature/thing', 'v2.0.0']);

const run = useContract(
  {
    check(req) {
      const problems = githubCheck(req, PATH);
      const { body, problem } = githubBody(req);
      if (problem) return [...problems, problem];
      if (typeof body?.ref !== 'string') problems.push(invalid('ref is required'));
      else if (!REFS.has(body.ref)) problems.push(invalid(`No ref found for: ${body.ref}`));
      const inputs = (body?.inputs ?? {}) as Record<string, unknown>;
      if (Object.keys(inputs).length > 10) problems.push(invalid('inputs may have at most 10 properties'));
      const unexpected = Object.keys(inputs).filter((k) => !DECLARED.has(k));
      if (unexpected.length > 0)
        problems.push(invalid(`Unexpected inputs provided: ${JSON.stringify(unexpected)}`));
      for (const [k, v] of Object.entries(inputs)) {
        if (!['string', 'number', 'boolean'].includes(typeof v))
          problems.push(invalid(`input ${k} has type ${typeof v}`));
      }
      return problems;
    },
    accepted: () => NO_CONTENT,
  },
  (url) => ({
    type: 'github-workflow-dispatch',
    url: `${url}/repos/acme/widgets/actions/workflows/ci.yml/dispatches`,
    auth: { type: 'bearer', token: GITHUB_TOKEN },
    parameters: { sha: 'commit', pr: 'pullRequestId' },
  }),
);

describe('github workflow_dispatch contract', () => {
  it('a branch push runs the workflow on that branch with the declared inputs (204)', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 204 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(JSON.parse(got!.req.body.toString())).toEqual({ ref: 'feature/x', inputs: { sha: HASH.b } });
  });

  it('a tag push runs on the tag; a pull request on its source branch with its id', async () => {
    const tag = await run.deliver('repo:push', cloudPush({ ref: 'v2.0.0', kind: 'tag' }));
    const pr = await run.deliver(
      'pullrequest:updated',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    expect((await run.settled(tag)).state).toBe('delivered');
    expect((await run.settled(pr)).state).toBe('delivered');
    expect(JSON.parse(run.requestsFor(tag)[0]!.req.body.toString()).ref).toBe('v2.0.0');
    expect(JSON.parse(run.requestsFor(pr)[0]!.req.body.toString())).toEqual({
      ref: 'feature/thing',
      inputs: { sha: '0704fc5beccc', pr: '7' },
    });
  });

  it('a merged pull request runs on the destination branch', async () => {
    const id = await run.deliver('pullrequest:fulfilled', cloudPullRequest({ state: 'MERGED' }));
    expect((await run.settled(id)).state).toBe('delivered');
    expect(JSON.parse(run.requestsFor(id)[0]!.req.body.toString()).ref).toBe('main');
  });

  it('a ref GitHub does not have is its 422: a dead letter, not retried', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'only-on-bitbucket', newHash: HASH.c }));
    const state = await run.settled(id);
    expect(state).toMatchObject({ state: 'dead', reason: 'status 422' });
    expect(state.excerpt).toContain('No ref found for: only-on-bitbucket');
    expect(run.requestsFor(id)).toHaveLength(1);
  });

  it('a secondary rate limit (429 with retry-after) is honoured, then delivered', async () => {
    const got = await run.deliverPast(
      json(429, { message: 'You have exceeded a secondary rate limit.' }, { 'retry-after': '1' }),
      'repo:push',
      cloudPush({ ref: 'main', newHash: HASH.a }),
    );
    expect(got.statuses).toEqual([429, 204]);
    expect(got.gapMs).toBeGreaterThanOrEqual(900);
  });
});
