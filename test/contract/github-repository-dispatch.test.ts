import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import {
  GITHUB_TOKEN,
  githubBody,
  githubCheck,
  invalid,
  NO_CONTENT,
  primaryRateLimit,
} from './helpers/github.js';
import { json, useContract } from './helpers/receiver.js';

const PATH = /^\/repos\/acme\/widgets\/dispatches$/;

// The body schema of "Create a repository dispatch event" (github/rest-api-description, repos/create-dispatch-event):
// event_type a string of 1..100 characters, client_payload an object of at most 10 top-level properties.
const run = useContract(
  {
    check(req) {
      const problems = githubCheck(req, PATH);
      const { body, problem } = githubBody(req);
      if (problem) return [...problems, problem];
      const eventType = body?.event_type;
      if (typeof eventType !== 'string' || eventType.length < 1 || eventType.length > 100) {
        problems.push(invalid('event_type must be a string of 1 to 100 characters'));
      }
      const payload = body?.client_payload;
      if (
        payload !== undefined &&
        (typeof payload !== 'object' || payload === null || Array.isArray(payload))
      ) {
        problems.push(invalid('client_payload must be an object'));
      } else if (payload && Object.keys(payload).length > 10) {
        problems.push(invalid('client_payload may have at most 10 properties'));
      }
      return problems;
    },
    accepted: () => NO_CONTENT,
  },
  (url) => ({
    type: 'github-repository-dispatch',
    url: `${url}/repos/acme/widgets/dispatches`,
    auth: { type: 'bearer', token: GITHUB_TOKEN },
  }),
);

describe('github repository_dispatch contract', () => {
  it('a branch push through the relay: accepted (204), event_type the event key, the push in client_payload', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 204 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(JSON.parse(got!.req.body.toString())).toEqual({
      event_type: 'repo:push',
      client_payload: {
        BITBUCKET_BRANCH: 'feature/x',
        BITBUCKET_COMMIT: HASH.b,
        BITBUCKET_REPOSITORY: 'acme/widgets',
        BITBUCKET_EVENT_KEY: 'repo:push',
        HOOKRELAY_EVENT_ID: id,
      },
    });
  });

  it('a Data Center tag push carries the tag; a pull request its id and source branch', async () => {
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    const pr = await run.deliver(
      'pullrequest:created',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    expect((await run.settled(tag)).state).toBe('delivered');
    expect((await run.settled(pr)).state).toBe('delivered');
    const tagBody = JSON.parse(run.requestsFor(tag)[0]!.req.body.toString());
    expect(tagBody.client_payload).toMatchObject({
      BITBUCKET_TAG: 'v1.4.0',
      BITBUCKET_REPOSITORY: 'ACME/widgets',
    });
    expect(tagBody.client_payload.BITBUCKET_BRANCH).toBeUndefined();
    const prReq = run.requestsFor(pr)[0]!;
    expect(prReq.problems).toEqual([]);
    expect(JSON.parse(prReq.req.body.toString()).client_payload).toMatchObject({
      BITBUCKET_BRANCH: 'feature/thing',
      BITBUCKET_PR_ID: '7',
    });
  });

  it('a deleted branch sends nothing and ends not applicable', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'old', newHash: null }));
    expect(await run.settled(id)).toMatchObject({
      state: 'not-applicable',
      reason: 'branch old deleted',
    });
    expect(run.requestsFor(id)).toEqual([]);
  });

  it('a primary rate limit (403, remaining 0) waits for x-ratelimit-reset, then delivers', async () => {
    const got = await run.deliverPast(
      primaryRateLimit(1),
      'repo:push',
      cloudPush({ ref: 'limited', newHash: HASH.c }),
    );
    expect(got.state.state).toBe('delivered');
    expect(got.statuses).toEqual([403, 204]);
    // The reset is the next whole second or later: the retry may not come before it (backoff alone: < 200 ms).
    expect(got.gapMs).toBeGreaterThanOrEqual(500);
  });

  it('a 422 is permanent: a dead letter with GitHub message', async () => {
    run.receiver.interpose(json(422, { message: 'Invalid request.', status: '422' }));
    const id = await run.deliver('repo:push', cloudPush({ ref: 'refused', newHash: HASH.a }));
    expect(await run.settled(id)).toMatchObject({ state: 'dead', reason: 'status 422' });
    expect((await run.settled(id)).excerpt).toContain('Invalid request.');
  });
});
