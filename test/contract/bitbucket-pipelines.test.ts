import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, HASH } from '../fixtures/payloads.js';
import type { Received } from '../helpers/target-server.js';
import { header, json, useContract } from './helpers/receiver.js';

/**
 * Bitbucket Cloud's run-pipeline operation as its API reference states it
 * (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pipelines/#api-repositories-workspace-repo-slug-pipelines-post):
 * POST /2.0/repositories/{workspace}/{repo_slug}/pipelines/ with a JSON `target` of type `pipeline_ref_target`
 * (`ref_type` branch|tag, `ref_name`, optional `selector`) or `pipeline_commit_target` (`commit: {type: commit,
 * hash}`, `selector`), and `variables: [{key, value, secured}]`; 201 with the pipeline. A selector naming no
 * custom pipeline of bitbucket-pipelines.yml is refused with 400, an unknown repository with 404. The fake's
 * repository has the custom pipeline `deploy`.
 */
const TOKEN = 'ATCTT3xFfGN0-contract';
const CUSTOM = new Set(['deploy']);
let buildNumber = 40;

function error(status: number, message: string) {
  return json(status, { type: 'error', error: { message } });
}

function check(req: Received) {
  const out = [];
  const path = new URL(req.url, 'http://x').pathname;
  if (req.method !== 'POST' || path !== '/2.0/repositories/acme/widgets/pipelines/') {
    out.push({ problem: `${req.method} ${path}`, answer: error(404, 'Repository acme/widgets not found') });
  }
  if (header(req, 'authorization') !== `Bearer ${TOKEN}`) {
    out.push({ problem: 'authorization', answer: error(401, 'Access token expired or invalid') });
  }
  if (!header(req, 'content-type')?.startsWith('application/json')) {
    out.push({ problem: 'content-type', answer: error(415, 'Unsupported Media Type') });
    return out;
  }
  let body: { target?: Record<string, unknown>; variables?: unknown };
  try {
    body = JSON.parse(req.body.toString());
  } catch {
    return [...out, { problem: 'not JSON', answer: error(400, 'Malformed JSON') }];
  }
  const t = body.target ?? {};
  const selector = t.selector as { type?: string; pattern?: string } | undefined;
  if (t.type === 'pipeline_ref_target') {
    if (!['branch', 'tag'].includes(String(t.ref_type)) || typeof t.ref_name !== 'string') {
      out.push({ problem: 'ref target without ref_type/ref_name', answer: error(400, 'Invalid target') });
    }
  } else if (t.type === 'pipeline_commit_target') {
    const commit = t.commit as { type?: string; hash?: string } | undefined;
    if (commit?.type !== 'commit' || !/^[0-9a-f]{40}$/.test(commit.hash ?? '')) {
      out.push({ problem: 'commit target without a full hash', answer: error(400, 'Invalid commit') });
    }
  } else {
    out.push({ problem: `target type ${String(t.type)}`, answer: error(400, 'Invalid target type') });
  }
  if (selector && (selector.type !== 'custom' || !CUSTOM.has(String(selector.pattern)))) {
    out.push({
      problem: `selector ${JSON.stringify(selector)}`,
      answer: error(400, `Could not find pipeline ${selector.pattern} in bitbucket-pipelines.yml`),
    });
  }
  const vars = body.variables;
  if (
    vars !== undefined &&
    (!Array.isArray(vars) || vars.some((v) => typeof v?.key !== 'string' || typeof v?.value !== 'string'))
  ) {
    out.push({ problem: 'variables', answer: error(400, 'Invalid variables') });
  }
  return out;
}

const run = useContract(
  {
    check,
    accepted: () =>
      json(201, {
        type: 'pipeline',
        uuid: `{${crypto.randomUUID()}}`,
        build_number: ++buildNumber,
        state: { name: 'PENDING', type: 'pipeline_state_pending' },
      }),
  },
  (url) => ({
    type: 'bitbucket-pipelines',
    url: `${url}/2.0/repositories/acme/widgets/pipelines/`,
    auth: { type: 'bearer', token: TOKEN },
    customPipeline: 'deploy',
  }),
);

describe('bitbucket pipelines contract', () => {
  it('a branch push runs the custom pipeline on the exact commit, with the event as variables (201)', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'main' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 201 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    const body = JSON.parse(got!.req.body.toString());
    expect(body.target).toEqual({
      type: 'pipeline_commit_target',
      commit: { type: 'commit', hash: HASH.b },
      selector: { type: 'custom', pattern: 'deploy' },
    });
    expect(body.variables).toContainEqual({ key: 'BITBUCKET_BRANCH', value: 'main', secured: false });
  });

  it('a pull request (12-character hash) runs it on the source branch; a deletion sends nothing', async () => {
    const pr = await run.deliver(
      'pullrequest:updated',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'old', newHash: null }));
    expect((await run.settled(pr)).state).toBe('delivered');
    expect(await run.settled(gone)).toMatchObject({ state: 'not-applicable', reason: 'branch old deleted' });
    const prReq = run.requestsFor(pr)[0]!;
    expect(prReq.problems).toEqual([]);
    expect(JSON.parse(prReq.req.body.toString()).target).toEqual({
      type: 'pipeline_ref_target',
      ref_type: 'branch',
      ref_name: 'feature/thing',
      selector: { type: 'custom', pattern: 'deploy' },
    });
    expect(run.requestsFor(gone)).toEqual([]);
  });

  it('a 429 is retried with backoff; a 404 (repository gone) is permanent', async () => {
    const limited = await run.deliverPast(
      error(429, 'Rate limit for this resource has been exceeded'),
      'repo:push',
      cloudPush({ ref: 'main', newHash: HASH.a }),
    );
    expect(limited.statuses).toEqual([429, 201]);
    run.receiver.interpose(error(404, 'Repository acme/widgets not found'));
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'main', newHash: HASH.c }));
    expect(await run.settled(gone)).toMatchObject({ state: 'dead', reason: 'status 404' });
  });
});
