import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import type { Received } from '../helpers/target-server.js';
import { header, json, useContract } from './helpers/receiver.js';

/**
 * CircleCI's "Trigger a new pipeline" (https://circleci.com/docs/api/v2/index.html#operation/triggerPipeline):
 * POST /api/v2/project/{project-slug}/pipeline, `Circle-Token` header (401 "You must log in first." without),
 * JSON body with `branch` or `tag` (not both: 400) and `parameters`, each of which the project's config must
 * declare (400 "Unexpected argument(s): …"); 201 with `{id, state, number, created_at}`. Rate limits: 429 with
 * Retry-After (https://circleci.com/docs/api-developers-guide/#rate-limits). The fake's config declares the
 * pipeline parameter `bitbucket_pr`.
 */
const TOKEN = 'CCIPAT_contract_0123456789';
const DECLARED = new Set(['bitbucket_pr']);
let number = 10;

function check(req: Received) {
  const out = [];
  const path = new URL(req.url, 'http://x').pathname;
  if (req.method !== 'POST' || path !== '/api/v2/project/bb/acme/widgets/pipeline') {
    out.push({ problem: `${req.method} ${path}`, answer: json(404, { message: 'Project not found' }) });
  }
  if (header(req, 'circle-token') !== TOKEN) {
    out.push({ problem: 'circle-token', answer: json(401, { message: 'You must log in first.' }) });
  }
  if (!header(req, 'content-type')?.startsWith('application/json')) {
    out.push({ problem: 'content-type', answer: json(400, { message: 'Invalid input' }) });
    return out;
  }
  const body = JSON.parse(req.body.toString()) as { branch?: string; tag?: string; parameters?: object };
  if (body.branch !== undefined && body.tag !== undefined) {
    out.push({
      problem: 'branch and tag',
      answer: json(400, { message: 'Only one of branch or tag may be given' }),
    });
  }
  const unexpected = Object.keys(body.parameters ?? {}).filter((k) => !DECLARED.has(k));
  if (unexpected.length > 0) {
    out.push({
      problem: `parameters ${unexpected.join(',')}`,
      answer: json(400, { message: `Unexpected argument(s): ${unexpected.join(', ')}` }),
    });
  }
  return out;
}

const run = useContract(
  {
    check,
    accepted: () =>
      json(201, {
        number: ++number,
        state: 'pending',
        id: crypto.randomUUID(),
        created_at: new Date().toISOString(),
      }),
  },
  (url) => ({
    type: 'circleci',
    url: `${url}/api/v2/project/bb/acme/widgets/pipeline`,
    auth: { type: 'token', token: TOKEN },
    parameters: { bitbucket_pr: 'pullRequestId' },
  }),
);

describe('circleci contract', () => {
  it('a branch push triggers the branch with Circle-Token (201)', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 201 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(header(got!.req, 'accept')).toBe('application/json');
    expect(header(got!.req, 'authorization')).toBeUndefined();
    expect(JSON.parse(got!.req.body.toString())).toEqual({ branch: 'feature/x' });
  });

  it('a tag push sends tag; a pull request its source branch and the declared parameter; a deletion nothing', async () => {
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    const pr = await run.deliver(
      'pullrequest:created',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'old', newHash: null }));
    for (const id of [tag, pr]) expect((await run.settled(id)).state).toBe('delivered');
    expect(await run.settled(gone)).toMatchObject({ state: 'not-applicable', reason: 'branch old deleted' });
    expect(JSON.parse(run.requestsFor(tag)[0]!.req.body.toString())).toEqual({ tag: 'v1.4.0' });
    expect(JSON.parse(run.requestsFor(pr)[0]!.req.body.toString())).toEqual({
      branch: 'feature/thing',
      parameters: { bitbucket_pr: '7' },
    });
    expect(run.requestsFor(gone)).toEqual([]);
  });

  it('a 429 with Retry-After is honoured; a 404 is permanent', async () => {
    const limited = await run.deliverPast(
      json(429, { message: 'Too Many Requests' }, { 'retry-after': '1' }),
      'repo:push',
      cloudPush({ ref: 'main', newHash: HASH.a }),
    );
    expect(limited.statuses).toEqual([429, 201]);
    expect(limited.gapMs).toBeGreaterThanOrEqual(900);
    run.receiver.interpose(json(404, { message: 'Project not found' }));
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'main', newHash: HASH.c }));
    expect(await run.settled(gone)).toMatchObject({ state: 'dead', reason: 'status 404' });
  });

  it('a timeout after the request went out is not retried: the pipeline may have started', async () => {
    run.receiver.interpose({ hang: true });
    const id = await run.deliver('repo:push', cloudPush({ ref: 'slow', newHash: HASH.merge }));
    const state = await run.settled(id);
    expect(state).toMatchObject({ state: 'dead', reason: 'timeout, may have fired' });
    expect(run.requestsFor(id)).toHaveLength(1);
  });
});
