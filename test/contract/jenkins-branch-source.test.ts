import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/bitbucket/signature.js';
import {
  cloudPullRequest,
  cloudPullRequestApproved,
  cloudPush,
  dcCommentAdded,
  dcPrMerged,
  dcRefsChanged,
} from '../fixtures/payloads.js';
import { SECRETS } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';
import { contract } from './harness.js';
import { BranchSourceReceiver } from './receivers/jenkins.js';

const db = useTestRedis();
const c = contract(() => db.url);
const BB_DC = 'https://bitbucket.acme.test';

describe('jenkins-branch-source contract', () => {
  it('sends the keys the plugin processes (server_url on Data Center only); the rest end not-applicable', async () => {
    const jenkins = new BranchSourceReceiver({ cloud: SECRETS.cloud, server: SECRETS.dc }, [BB_DC]);
    const server = await c.receiver(jenkins.answer);
    const relay = await c.relay(server, `${server.url}/jenkins/`, {
      type: 'jenkins-branch-source',
      serverUrl: BB_DC,
    });
    const delivered = [
      await c.cloud(relay, 'repo:push', cloudPush()),
      await c.cloud(relay, 'pullrequest:created', cloudPullRequest({ state: 'OPEN', mergeCommit: null })),
      await c.dc(relay, 'repo:refs_changed', dcRefsChanged()),
      await c.dc(relay, 'pr:merged', dcPrMerged()),
    ];
    const inapplicable = [
      await c.cloud(
        relay,
        'pullrequest:approved',
        cloudPullRequestApproved({ state: 'OPEN', mergeCommit: null }),
      ),
      await c.dc(relay, 'repo:comment:added', dcCommentAdded()),
    ];
    for (const id of delivered) {
      const s = await relay.settled(id, 't');
      expect(s.state, JSON.stringify(s)).toBe('delivered');
    }
    for (const id of inapplicable) {
      const state = await relay.settled(id, 't');
      expect(state).toMatchObject({ state: 'not-applicable', attempts: [] });
      expect(state.reason).toMatch(/not processed by the Bitbucket Branch Source plugin/);
    }
    expect(jenkins.processed.sort()).toEqual([
      'pr:merged',
      'pullrequest:created',
      'repo:push',
      'repo:refs_changed',
    ]);
    // Nothing was sent for the two it would have refused with 400.
    expect(server.received).toHaveLength(4);
    for (const got of server.received) {
      const url = new URL(got.url, server.url);
      expect(url.pathname).toBe('/jenkins/bitbucket-scmsource-hook/notify');
      const dc = got.headers['x-request-id'] !== undefined;
      expect(url.searchParams.get('server_url')).toBe(dc ? BB_DC : null);
      const secret = dc ? SECRETS.dc : SECRETS.cloud;
      expect(verifySignature(String(got.headers['x-hub-signature']), got.body, [secret])).toBe('ok');
    }
  });

  it('the receiver refuses what the plugin refuses: an unprocessed key, a Cloud event with server_url, an unknown server', async () => {
    const jenkins = new BranchSourceReceiver({ cloud: SECRETS.cloud, server: SECRETS.dc }, [BB_DC]);
    const server = await c.receiver(jenkins.answer);
    const post = (query: string, headers: Record<string, string>) =>
      fetch(`${server.url}/bitbucket-scmsource-hook/notify${query}`, {
        method: 'POST',
        headers,
        body: '{}',
      }).then((r) => r.status);
    expect(await post('', { 'x-event-key': 'pullrequest:approved', 'x-request-uuid': 'u' })).toBe(400);
    expect(await post('?server_url=x', { 'x-event-key': 'repo:push', 'x-request-uuid': 'u' })).toBe(400);
    expect(await post('?server_url=https://other', { 'x-event-key': 'pr:opened', 'x-request-id': 'u' })).toBe(
      400,
    );
    expect(await post('', { 'x-event-key': 'repo:push', 'x-request-uuid': 'u' })).toBe(403);
    expect(jenkins.processed).toEqual([]);
  });
});
