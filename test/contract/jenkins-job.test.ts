import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged, HASH } from '../fixtures/payloads.js';
import type { Received } from '../helpers/target-server.js';
import { header, useContract } from './helpers/receiver.js';

/**
 * Jenkins core as its source handles POST {job}/buildWithParameters (jenkinsci/jenkins):
 * - hudson/model/ParametersDefinitionProperty.java buildWithParameters: one value per parameter the job
 *   declares (read with getParameter, so form or query), undeclared names ignored, then
 *   `rsp.sendRedirect(SC_CREATED, …/queue/item/N/)`: 201 with Location;
 * - jenkins/model/ParameterizedJobMixIn.java doBuildWithParameters: 409 (SC_CONFLICT) for a job that is not
 *   buildable (disabled), IllegalStateException (500) for a job without parameters; the fake also refuses
 *   anything but POST, which is all the relay sends;
 * - hudson/security/csrf/CrumbFilter.java with jenkins/security/ApiCrumbExclusion.java: a POST without a crumb
 *   is refused 403 "No valid crumb was included in the request" unless authenticated by an API token (Basic
 *   user:apiToken, BasicHeaderApiTokenAuthenticator); a password is no API token.
 * The fake job declares BITBUCKET_BRANCH, BITBUCKET_COMMIT, BITBUCKET_PR_ID; user `relay` has the API token below
 * and the password `hunter2`.
 */
const API_TOKEN = '11f1d2c3b4a5968778695a4b3c2d1e0f9a';
const DECLARED = ['BITBUCKET_BRANCH', 'BITBUCKET_COMMIT', 'BITBUCKET_PR_ID'];
let queueItem = 300;
/** What Jenkins took as each queued build's parameters (the declared ones only). */
const queued: Record<string, string>[] = [];

function credentials(req: Received): { user: string; secret: string } | undefined {
  const auth = header(req, 'authorization');
  if (!auth?.startsWith('Basic ')) return undefined;
  const [user, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
  return { user: user!, secret: rest.join(':') };
}

function check(req: Received) {
  const out = [];
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/job/widgets/buildWithParameters') {
    return [{ problem: `path ${url.pathname}`, answer: { status: 404, body: 'Not Found' } }];
  }
  if (req.method !== 'POST')
    out.push({ problem: 'not POST', answer: { status: 405, body: 'This URL requires POST' } });
  const who = credentials(req);
  const byToken = who?.user === 'relay' && who.secret === API_TOKEN;
  if (who && !byToken && !(who.user === 'relay' && who.secret === 'hunter2')) {
    out.push({
      problem: 'bad credentials',
      answer: { status: 401, body: 'Invalid password/token for user: relay' },
    });
  }
  if (!byToken && !header(req, 'jenkins-crumb')) {
    out.push({
      problem: 'no crumb',
      answer: { status: 403, body: 'No valid crumb was included in the request' },
    });
  }
  return out;
}

const run = useContract(
  {
    check(req) {
      return check(req);
    },
    accepted(req) {
      const form = header(req, 'content-type')?.startsWith('application/x-www-form-urlencoded')
        ? new URLSearchParams(req.body.toString())
        : new URLSearchParams();
      const query = new URL(req.url, 'http://x').searchParams;
      const values: Record<string, string> = {};
      for (const name of DECLARED) {
        const v = form.get(name) ?? query.get(name);
        if (v !== null) values[name] = v;
      }
      queued.push(values);
      return {
        status: 201,
        headers: { location: `http://jenkins.test/queue/item/${++queueItem}/` },
        body: '',
      };
    },
  },
  (url) => ({
    type: 'jenkins-job',
    url: `${url}/job/widgets/buildWithParameters`,
    auth: { type: 'basic', username: 'relay', password: API_TOKEN },
  }),
);

describe('jenkins parameterised job contract', () => {
  it('a branch push queues the job with its parameters, API token and no crumb (201 + Location)', async () => {
    const id = await run.deliver('repo:push', cloudPush({ ref: 'feature/x' }));
    expect(await run.settled(id)).toMatchObject({ state: 'delivered', attempts: [{ status: 201 }] });
    const [got] = run.requestsFor(id);
    expect(got!.problems).toEqual([]);
    expect(header(got!.req, 'content-type')).toBe('application/x-www-form-urlencoded');
    expect(queued.at(-1)).toEqual({ BITBUCKET_BRANCH: 'feature/x', BITBUCKET_COMMIT: HASH.b });
    // Undeclared names (repository, event key …) reach Jenkins and are ignored by it.
    expect(new URLSearchParams(got!.req.body.toString()).get('BITBUCKET_EVENT_KEY')).toBe('repo:push');
  });

  it('a pull request sends its id and source branch; a tag its name; a deletion nothing', async () => {
    const pr = await run.deliver(
      'pullrequest:updated',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    expect((await run.settled(pr)).state).toBe('delivered');
    expect(queued.at(-1)).toEqual({
      BITBUCKET_BRANCH: 'feature/thing',
      BITBUCKET_COMMIT: '0704fc5beccc',
      BITBUCKET_PR_ID: '7',
    });
    const tag = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'v1.4.0', kind: 'TAG' }), 'dc');
    expect((await run.settled(tag)).state).toBe('delivered');
    expect(new URLSearchParams(run.requestsFor(tag)[0]!.req.body.toString()).get('BITBUCKET_TAG')).toBe(
      'v1.4.0',
    );
    const gone = await run.deliver('repo:refs_changed', dcRefsChanged({ ref: 'old', type: 'DELETE' }), 'dc');
    expect(await run.settled(gone)).toMatchObject({ state: 'not-applicable', reason: 'branch old deleted' });
    expect(run.requestsFor(gone)).toEqual([]);
  });

  it('409 (job disabled) is permanent; 500 may have fired and is not retried', async () => {
    run.receiver.interpose({ status: 409, body: 'widgets is not buildable' });
    const disabled = await run.deliver('repo:push', cloudPush({ ref: 'main', newHash: HASH.a }));
    expect(await run.settled(disabled)).toMatchObject({ state: 'dead', reason: 'status 409' });
    run.receiver.interpose({ status: 500, body: 'java.lang.IllegalStateException' });
    const failed = await run.deliver('repo:push', cloudPush({ ref: 'main', newHash: HASH.c }));
    expect(await run.settled(failed)).toMatchObject({ state: 'dead', reason: 'status 500, may have fired' });
    expect(run.requestsFor(failed)).toHaveLength(1);
  });
});
