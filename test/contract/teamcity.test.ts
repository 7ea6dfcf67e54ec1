import { describe, expect, it } from 'vitest';
import { cloudPullRequest, cloudPush, dcRefsChanged } from '../fixtures/payloads.js';
import { useTestRedis } from '../helpers/redis.js';
import { contract } from './harness.js';
import { ENDPOINT, TeamcityReceiver } from './receivers/teamcity.js';

const db = useTestRedis();
const c = contract(() => db.url);
const LOCATOR = 'vcsRoot:(type:jetbrains.git,count:99999),property:(name:url,value:acme/widgets)';

describe('teamcity contract', () => {
  it('every event schedules a check of the locator: POST, text/plain accepted, Bearer, empty body, 202', async () => {
    const tc = new TeamcityReceiver([LOCATOR], 'tc-token');
    const server = await c.receiver(tc.answer);
    // A configured Accept must not win: the relay owns it.
    const relay = await c.relay(server, `${server.url}/tc/`, {
      type: 'teamcity',
      locator: LOCATOR,
      auth: { type: 'bearer', token: 'tc-token' },
      headers: { Accept: 'application/json' },
    });
    const ids = [
      await c.cloud(relay, 'repo:push', cloudPush()),
      await c.cloud(relay, 'pullrequest:approved', cloudPullRequest({ state: 'OPEN', mergeCommit: null })),
      await c.dc(relay, 'repo:refs_changed', dcRefsChanged()),
    ];
    for (const id of ids) {
      const state = await relay.settled(id, 't');
      expect(state.state, id).toBe('delivered');
      expect(state.attempts.map((a) => a.status)).toEqual([202]);
    }
    expect(tc.scheduled).toEqual([LOCATOR, LOCATOR, LOCATOR]);
    for (const got of server.received) {
      const url = new URL(got.url, server.url);
      expect(got.method).toBe('POST');
      expect(url.pathname).toBe(`/tc${ENDPOINT}`);
      expect(url.searchParams.get('locator')).toBe(LOCATOR);
      expect(got.headers.accept).toBe('text/plain');
      expect(got.headers['content-type']).toBeUndefined();
      expect(got.headers['content-length']).toBe('0');
      expect(got.body.length).toBe(0);
    }
  });

  it('the receiver answers as Jersey does: 406 to an Accept text/plain does not fit, 404 for an unknown locator', async () => {
    const tc = new TeamcityReceiver([LOCATOR], 'tc-token');
    const server = await c.receiver(tc.answer);
    const post = (accept: string | undefined, locator = LOCATOR) =>
      fetch(`${server.url}${ENDPOINT}?locator=${encodeURIComponent(locator)}`, {
        method: 'POST',
        headers: { authorization: 'Bearer tc-token', ...(accept ? { accept } : {}) },
        body: '',
      }).then((r) => r.status);
    expect(await post('application/json')).toBe(406);
    expect(await post('application/json, text/plain;q=0')).toBe(406);
    expect(await post('application/xml, text/*;q=0.5')).toBe(202);
    expect(await post(undefined)).toBe(202);
    expect(await post('*/*', 'vcsRoot:(id:Nope)')).toBe(404);
    // A relay pointed at a locator that matches nothing: permanent, with TeamCity's own explanation.
    const relay = await c.relay(server, server.url, {
      type: 'teamcity',
      locator: 'vcsRoot:(id:Nope)',
      auth: { type: 'bearer', token: 'tc-token' },
    });
    const id = await c.cloud(relay, 'repo:push', cloudPush());
    const state = await relay.settled(id, 't');
    expect(state).toMatchObject({ state: 'dead', reason: 'status 404' });
    expect(state.excerpt).toContain('No VCS roots are found');
  });
});
