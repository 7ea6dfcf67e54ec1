import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import type { Received } from '../helpers/target-server.js';
import { header, json, useContract } from './helpers/receiver.js';

/**
 * Bamboo Data Center's REST API (https://docs.atlassian.com/atlassian-bamboo/REST/latest/; PlanResource and
 * QueueResource): GET /rest/api/latest/plan/{PROJ}-{PLAN}/branch/{name} answers the plan branch (`key`,
 * `shortName`) or 404; POST /rest/api/latest/queue/{key} queues a build, variables as
 * `bamboo.variable.{name}` and `customRevision` query parameters, answered 200 with `buildResultKey`, 404 for an
 * unknown plan. Personal access tokens go as `Authorization: Bearer` (401 otherwise). Without
 * `Accept: application/json` Bamboo answers XML. Atlassian REST refuses a form-encoded POST without
 * `X-Atlassian-Token: no-check` (403 "XSRF check failed"). The fake plan WID-CI has the plan branch
 * `feature-x` (VCS branch feature/x) as WID-CI3.
 */
const PAT = 'NzE0ODcxMTk5OTk5OkContractBambooPat';
const BRANCHES: Record<string, string> = { 'feature-x': 'WID-CI3' };
const PLANS = new Set(['WID-CI', 'WID-CI3']);
let buildNumber = 20;

function check(req: Received) {
  const out = [];
  const url = new URL(req.url, 'http://x');
  if (header(req, 'authorization') !== `Bearer ${PAT}`) {
    out.push({
      problem: 'authorization',
      answer: json(401, {
        message: 'Client must be authenticated to access this resource.',
        'status-code': 401,
      }),
    });
  }
  if (header(req, 'accept') !== 'application/json') {
    out.push({
      problem: `accept ${header(req, 'accept')}`,
      answer: { status: 200, headers: { 'content-type': 'application/xml' }, body: '<queue/>' },
    });
  }
  const branch = url.pathname.match(/^\/bamboo\/rest\/api\/latest\/plan\/WID-CI\/branch\/([^/]+)$/);
  const queue = url.pathname.match(/^\/bamboo\/rest\/api\/latest\/queue\/([A-Z0-9]+-[A-Z0-9]+)$/);
  if (req.method === 'GET' && branch) {
    if (!BRANCHES[decodeURIComponent(branch[1]!)]) {
      out.push({
        problem: `no plan branch ${branch[1]}`,
        answer: json(404, { message: `Plan branch ${branch[1]} not found`, 'status-code': 404 }),
      });
    }
  } else if (req.method === 'POST' && queue) {
    if (!PLANS.has(queue[1]!)) {
      out.push({
        problem: `no plan ${queue[1]}`,
        answer: json(404, { message: `Plan ${queue[1]} not found`, 'status-code': 404 }),
      });
    }
    const form = header(req, 'content-type')?.startsWith('application/x-www-form-urlencoded');
    if (form && header(req, 'x-atlassian-token') !== 'no-check') {
      out.push({ problem: 'XSRF', answer: { status: 403, body: 'XSRF check failed' } });
    }
  } else {
    out.push({
      problem: `${req.method} ${url.pathname}`,
      answer: json(404, { message: 'Not found', 'status-code': 404 }),
    });
  }
  return out;
}

const run = useContract(
  {
    check,
    accepted: (req) => {
      const url = new URL(req.url, 'http://x');
      const branch = url.pathname.match(/\/branch\/([^/]+)$/);
      if (branch) {
        const name = decodeURIComponent(branch[1]!);
        return json(200, {
          key: BRANCHES[name],
          shortName: name,
          shortKey: BRANCHES[name]!.split('-')[1],
          enabled: true,
        });
      }
      const planKey = url.pathname.split('/').at(-1)!;
      const n = ++buildNumber;
      return json(200, {
        planKey,
        buildNumber: n,
        buildResultKey: `${planKey}-${n}`,
        triggerReason: 'Manual build',
      });
    },
  },
  (url) => ({
    type: 'bamboo',
    url: `${url}/bamboo/rest/api/latest/queue/WID-CI`,
    auth: { type: 'bearer', token: PAT },
    defaultBranch: 'main',
  }),
);

describe('bamboo contract', () => {
  it('a push to the default branch queues the plan itself at the pushed commit (200)', async () => {
    const id = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'main' }), 'dc');
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 200 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    const url = new URL(got!.req.url, 'http://x');
    expect(url.pathname).toBe('/bamboo/rest/api/latest/queue/WID-CI');
    expect(url.searchParams.get('customRevision')).toBe(HASH.b);
    expect(url.searchParams.get('bamboo.variable.BITBUCKET_BRANCH')).toBe('main');
    expect(got!.req.body.length).toBe(0);
  });

  it('a push to another branch looks up its plan branch, then queues that', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect((await run.settled(id)).state).toBe('delivered');
    // The lookup carries the relay's event header only through the queue request: match by order instead.
    const lookup = run.receiver.seen.find(
      (s) => s.req.method === 'GET' && s.req.url.endsWith('/branch/feature-x'),
    );
    expect(lookup?.problems).toEqual([]);
    const [queued] = run.requestsFor(id);
    expect(new URL(queued!.req.url, 'http://x').pathname).toBe('/bamboo/rest/api/latest/queue/WID-CI3');
    expect(queued!.problems).toEqual([]);
  });

  it('a branch without a plan branch, a tag and a deletion are not applicable', async () => {
    const none = await run.deliver(
      'pullrequest:created',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'old', newHash: null }));
    expect(await run.settled(none)).toMatchObject({
      state: 'not-applicable',
      reason: 'no Bamboo plan branch feature-thing of WID-CI',
    });
    expect(await run.settled(tag)).toMatchObject({
      state: 'not-applicable',
      reason: 'Bamboo plans build branches, not tags',
    });
    expect(await run.settled(gone)).toMatchObject({ state: 'not-applicable', reason: 'branch old deleted' });
    for (const id of [none, tag, gone]) expect(run.requestsFor(id)).toEqual([]);
  });

  it('a lookup that times out started nothing: it is retried, then the build is queued', async () => {
    run.receiver.interpose({ hang: true });
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x', newHash: HASH.merge }));
    const state = await run.settled(id);
    expect(state.state).toBe('delivered');
    expect(state.attempts.map((a) => a.error ?? a.status)).toEqual(['timeout', 200]);
    expect(run.requestsFor(id)).toHaveLength(1);
  });

  it('a lookup refused for its credentials is a dead letter with the lookup status', async () => {
    run.receiver.interpose(json(401, { message: 'Client must be authenticated to access this resource.' }));
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x', newHash: HASH.c }));
    expect(await run.settled(id)).toMatchObject({ state: 'dead', reason: 'status 401' });
    expect(run.requestsFor(id)).toEqual([]);
  });
});
