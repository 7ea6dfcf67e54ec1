import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import type { Received } from '../helpers/target-server.js';
import { header, json, useContract } from './helpers/receiver.js';

/**
 * GitLab's trigger endpoint as gitlabhq/gitlabhq lib/api/ci/triggers.rb handles it: `ref` and `token` required
 * (Grape answers 400 "<name> is missing"), `variables` a map of strings (400 otherwise), an unknown token 404
 * (`not_found!` when the trigger service finds none), a ref the project lacks 400 with the pipeline's error
 * "Reference not found", success 201 with the pipeline. Grape reads form, multipart or JSON bodies.
 * Rate limits: 429 with `RateLimit-Reset` (epoch seconds) and `Retry-After` (https://docs.gitlab.com/security/rate_limits/).
 */
const TOKEN = 'glptt-0123456789abcdef0123';
const REFS = new Set(['main', 'feature/x', 'feature/thing', 'v1.4.0']);
let pipelineId = 100;

function form(req: Received): URLSearchParams | undefined {
  if (!header(req, 'content-type')?.startsWith('application/x-www-form-urlencoded')) return undefined;
  return new URLSearchParams(req.body.toString());
}

const run = useContract(
  {
    check(req) {
      const out = [];
      const path = new URL(req.url, 'http://x').pathname;
      if (req.method !== 'POST' || path !== '/api/v4/projects/42/trigger/pipeline') {
        out.push({ problem: `${req.method} ${path}`, answer: json(404, { error: '404 Not Found' }) });
      }
      if (new URL(req.url, 'http://x').searchParams.has('token')) {
        out.push({
          problem: 'token in the URL',
          answer: json(400, { error: 'token must not be in the URL' }),
        });
      }
      const f = form(req);
      if (!f)
        return [
          ...out,
          { problem: 'not a form', answer: json(400, { error: 'ref is missing, token is missing' }) },
        ];
      if (!f.get('token'))
        out.push({ problem: 'no token', answer: json(400, { error: 'token is missing' }) });
      if (!f.get('ref')) out.push({ problem: 'no ref', answer: json(400, { error: 'ref is missing' }) });
      for (const key of f.keys()) {
        if (!/^(token|ref|variables\[[^\]]+\])$/.test(key)) {
          out.push({
            problem: `unknown field ${key}`,
            answer: json(400, { error: `${key} does not have a valid value` }),
          });
        }
      }
      if (f.get('token') && f.get('token') !== TOKEN) {
        out.push({ problem: 'unknown token', answer: json(404, { message: '404 Not Found' }) });
      } else if (f.get('ref') && !REFS.has(f.get('ref')!)) {
        out.push({
          problem: 'unknown ref',
          answer: json(400, { message: { base: ['Reference not found'] } }),
        });
      }
      return out;
    },
    accepted: (req) =>
      json(201, {
        id: ++pipelineId,
        iid: pipelineId,
        project_id: 42,
        ref: form(req)!.get('ref'),
        status: 'created',
        source: 'trigger',
        web_url: `https://gitlab.example.com/acme/widgets/-/pipelines/${pipelineId}`,
      }),
  },
  (url) => ({
    type: 'gitlab-trigger',
    url: `${url}/api/v4/projects/42/trigger/pipeline`,
    auth: { type: 'token', token: TOKEN },
  }),
);

describe('gitlab pipeline trigger contract', () => {
  it('a branch push: a form with token, ref and variables, answered 201', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 201 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(header(got!.req, 'accept')).toBe('application/json');
    const f = new URLSearchParams(got!.req.body.toString());
    expect(f.get('ref')).toBe('feature/x');
    expect(f.get('variables[BITBUCKET_COMMIT]')).toBe(HASH.b);
    expect(f.get('variables[BITBUCKET_EVENT_KEY]')).toBe('repo:push');
    expect(header(got!.req, 'authorization')).toBeUndefined();
  });

  it('a tag push triggers the tag; an opened pull request its source branch; a deletion nothing', async () => {
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    const pr = await run.deliver(
      'pullrequest:created',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    const gone = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'old', type: 'DELETE' }), 'dc');
    expect((await run.settled(tag)).state).toBe('delivered');
    expect((await run.settled(pr)).state).toBe('delivered');
    expect(await run.settled(gone)).toMatchObject({
      state: 'not-applicable',
      reason: 'branch old deleted',
    });
    expect(new URLSearchParams(run.requestsFor(tag)[0]!.req.body.toString()).get('ref')).toBe('v1.4.0');
    const prForm = new URLSearchParams(run.requestsFor(pr)[0]!.req.body.toString());
    expect(prForm.get('ref')).toBe('feature/thing');
    expect(prForm.get('variables[BITBUCKET_PR_ID]')).toBe('7');
    expect(run.requestsFor(gone)).toEqual([]);
  });

  it('"Reference not found" (400) is permanent', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'only-on-bitbucket', newHash: HASH.c }));
    const state = await run.settled(id);
    expect(state).toMatchObject({ state: 'dead', reason: 'status 400' });
    expect(state.excerpt).toContain('Reference not found');
    expect(run.requestsFor(id)).toHaveLength(1);
  });

  it('a 429 with RateLimit-Reset and no Retry-After waits for the reset, then delivers', async () => {
    const got = await run.deliverPast(
      json(
        429,
        { message: 'Retry later' },
        {
          'ratelimit-limit': '60',
          'ratelimit-remaining': '0',
          'ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1),
        },
      ),
      'repo:push',
      cloudPush({ ref: 'main', newHash: HASH.a }),
    );
    expect(got.statuses).toEqual([429, 201]);
    expect(got.gapMs).toBeGreaterThanOrEqual(500);
  });
});
