import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import type { Behaviour, Received } from '../helpers/target-server.js';
import { header, json, useContract } from './helpers/receiver.js';

/**
 * Azure DevOps' Runs - Run Pipeline
 * (https://learn.microsoft.com/rest/api/azure/devops/pipelines/runs/run-pipeline?view=azure-devops-rest-7.1):
 * POST {org}/{project}/_apis/pipelines/{id}/runs?api-version=7.1, JSON body with
 * `resources.repositories.self.refName` and optional `version`, `templateParameters` (each declared by the
 * YAML, else 400), answered 200 with the run. A PAT goes as Basic with an empty user name
 * (https://learn.microsoft.com/azure/devops/organizations/accounts/use-personal-access-tokens-to-authenticate);
 * credentials it does not accept get 203 and the HTML sign-in page instead of JSON. A missing api-version is
 * 400. Rate limits: 429 with Retry-After and X-RateLimit-* headers, X-RateLimit-Reset in epoch seconds
 * (https://learn.microsoft.com/azure/devops/integrate/concepts/rate-limits). The fake pipeline declares the
 * template parameter `bitbucketEvent`.
 */
const PAT = 'azdopat0123456789abcdefcontract';
const DECLARED = new Set(['bitbucketEvent']);
let runId = 500;

const SIGN_IN: Behaviour = {
  status: 203,
  headers: { 'content-type': 'text/html; charset=utf-8' },
  body: '<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body></body></html>',
};

function error(message: string, typeKey: string) {
  return json(400, {
    $id: '1',
    innerException: null,
    message,
    typeName: `Microsoft.Azure.Pipelines.WebApi.${typeKey}`,
    typeKey,
    errorCode: 0,
  });
}

function check(req: Received) {
  const out = [];
  const url = new URL(req.url, 'http://x');
  if (req.method !== 'POST' || url.pathname !== '/acme/widgets/_apis/pipelines/12/runs') {
    out.push({ problem: `${req.method} ${url.pathname}`, answer: json(404, { message: 'Not found' }) });
  }
  if (url.searchParams.get('api-version') !== '7.1') {
    out.push({
      problem: 'api-version',
      answer: error('No api-version was supplied for the POST request.', 'VssVersionNotSpecifiedException'),
    });
  }
  if (header(req, 'authorization') !== `Basic ${Buffer.from(`:${PAT}`).toString('base64')}`) {
    out.push({ problem: 'authorization', answer: SIGN_IN });
  }
  if (!header(req, 'content-type')?.startsWith('application/json')) {
    return [...out, { problem: 'content-type', answer: json(415, { message: 'Unsupported media type' }) }];
  }
  const body = JSON.parse(req.body.toString());
  const self = body?.resources?.repositories?.self;
  if (typeof self?.refName !== 'string' || !/^refs\/(heads|tags)\/.+/.test(self.refName)) {
    out.push({
      problem: `refName ${self?.refName}`,
      answer: error('Unable to resolve the reference', 'PipelineValidationException'),
    });
  }
  const unexpected = Object.keys(body.templateParameters ?? {}).filter((k) => !DECLARED.has(k));
  if (unexpected.length > 0) {
    out.push({
      problem: `templateParameters ${unexpected.join(',')}`,
      answer: error(`Unexpected parameter '${unexpected[0]}'`, 'PipelineValidationException'),
    });
  }
  return out;
}

const run = useContract(
  {
    check,
    accepted: (req) => {
      const self = JSON.parse(req.body.toString()).resources.repositories.self;
      return json(200, {
        id: ++runId,
        name: `20261130.${runId}`,
        state: 'inProgress',
        resources: { repositories: { self: { refName: self.refName, version: self.version } } },
        pipeline: { id: 12, name: 'widgets' },
      });
    },
  },
  (url) => ({
    type: 'azure-pipelines',
    url: `${url}/acme/widgets/_apis/pipelines/12/runs`,
    auth: { type: 'basic', username: '', password: PAT },
    parameters: { bitbucketEvent: 'eventKey' },
  }),
);

describe('azure pipelines contract', () => {
  it('a branch push runs refs/heads/<branch> at the pushed commit (200)', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 200 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(JSON.parse(got!.req.body.toString())).toEqual({
      resources: { repositories: { self: { refName: 'refs/heads/feature/x', version: HASH.b } } },
      templateParameters: { bitbucketEvent: 'repo:push' },
    });
  });

  it('a tag push runs refs/tags/<tag>; a merged pull request the destination; a deletion nothing', async () => {
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    const merged = await run.deliver('pullrequest:fulfilled', cloudPullRequest({ state: 'MERGED' }));
    const gone = await run.deliver('repo:push', cloudPush({ ref: 'old', newHash: null }));
    for (const id of [tag, merged]) expect((await run.settled(id)).state).toBe('delivered');
    expect(await run.settled(gone)).toMatchObject({ state: 'not-applicable', reason: 'branch old deleted' });
    expect(JSON.parse(run.requestsFor(tag)[0]!.req.body.toString()).resources.repositories.self.refName).toBe(
      'refs/tags/v1.4.0',
    );
    // The merge commit is a 12-character hash on Cloud: the run takes the branch head, not a version.
    expect(JSON.parse(run.requestsFor(merged)[0]!.req.body.toString()).resources.repositories.self).toEqual({
      refName: 'refs/heads/main',
    });
    expect(run.requestsFor(gone)).toEqual([]);
  });

  it('a 429 waits for Retry-After; a 203 sign-in page is a dead letter, not a run', async () => {
    const limited = await run.deliverPast(
      json(
        429,
        { message: 'Request was blocked due to exceeding usage of resource' },
        {
          'retry-after': '1',
          'x-ratelimit-resource': 'ATCPU',
          'x-ratelimit-delay': '1.0',
          'x-ratelimit-limit': '200',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 1),
        },
      ),
      'repo:push',
      cloudPush({ ref: 'main', newHash: HASH.a }),
    );
    expect(limited.statuses).toEqual([429, 200]);
    expect(limited.gapMs).toBeGreaterThanOrEqual(900);
    run.receiver.interpose(SIGN_IN);
    const refused = await run.deliver('repo:push', cloudPush({ ref: 'main', newHash: HASH.c }));
    expect(await run.settled(refused)).toMatchObject({
      state: 'dead',
      reason: 'status 203, sign-in page: credentials refused',
    });
  });
});
