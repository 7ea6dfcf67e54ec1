import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/bitbucket/signature.js';
import { cloudPullRequest, cloudPush, dcPrMerged, dcRefsChanged } from '../fixtures/payloads.js';
import { SECRETS } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';
import { contract } from './harness.js';
import { PprReceiver } from './receivers/jenkins.js';

const db = useTestRedis();
const c = contract(() => db.url);

describe('jenkins-bitbucket contract', () => {
  it('posts to /bitbucket-hook/ with the trailing slash; the events filter and the plugin keys decide the rest', async () => {
    // One hook secret for both sources, as one Jenkins has one.
    const jenkins = new PprReceiver(SECRETS.cloud);
    const server = await c.receiver(jenkins.answer);
    const relay = await c.relay(server, `${server.url}/bitbucket-hook`, {
      type: 'jenkins-bitbucket',
      events: ['repo:*', 'pullrequest:*'],
    });
    const cloudPushId = await c.cloud(relay, 'repo:push', cloudPush());
    const approved = await c.cloud(
      relay,
      'pullrequest:approved',
      cloudPullRequest({ state: 'OPEN', mergeCommit: null }),
    );
    const dcPush = await c.dc(relay, 'repo:refs_changed', dcRefsChanged());
    const filtered = await c.dc(relay, 'pr:merged', dcPrMerged());
    expect((await relay.settled(cloudPushId, 't')).state).toBe('delivered');
    expect((await relay.settled(approved, 't')).state).toBe('delivered');
    // Signed with the DC source's secret, which this Jenkins does not have: its 403 is a dead letter.
    expect(await relay.settled(dcPush, 't')).toMatchObject({ state: 'dead', reason: 'status 403' });
    expect(await relay.settled(filtered, 't')).toMatchObject({
      state: 'not-applicable',
      reason: "event pr:merged not in the target's events",
      attempts: [],
    });
    // Workers send concurrently: the two Cloud events may arrive in either order.
    expect([...jenkins.processed].sort()).toEqual(['pullrequest:approved', 'repo:push']);
    expect(server.received.map((r) => r.url)).toEqual([
      '/bitbucket-hook/',
      '/bitbucket-hook/',
      '/bitbucket-hook/',
    ]);
    const fromCloud = server.received.filter((r) => r.headers['x-event-key'] !== 'repo:refs_changed');
    expect(fromCloud).toHaveLength(2);
    for (const got of fromCloud) {
      expect(verifySignature(String(got.headers['x-hub-signature']), got.body, [SECRETS.cloud])).toBe('ok');
    }
  });

  it('a key the plugin cannot parse ends not-applicable; the receiver answers 400 to it and 403 without the slash', async () => {
    const jenkins = new PprReceiver(SECRETS.cloud);
    const server = await c.receiver(jenkins.answer);
    const relay = await c.relay(server, server.url, { type: 'jenkins-bitbucket' });
    const deleted = await c.dc(relay, 'pr:deleted', dcPrMerged());
    expect(await relay.settled(deleted, 't')).toMatchObject({ state: 'not-applicable', attempts: [] });
    expect((await relay.settled(deleted, 't')).reason).toMatch(/Push and Pull Request plugin/);
    const post = (path: string, key: string) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'x-event-key': key }, body: '{}' }).then(
        (r) => r.status,
      );
    expect(await post('/bitbucket-hook', 'repo:push')).toBe(403);
    const signedPost = (key: string) => {
      const body = Buffer.from('{}');
      return fetch(`${server.url}/bitbucket-hook/`, {
        method: 'POST',
        headers: { 'x-event-key': key, 'x-hub-signature': signFor(body) },
        body,
      }).then((r) => r.status);
    };
    expect(await signedPost('pr:deleted')).toBe(400);
    expect(await signedPost('pr:reviewer:approved')).toBe(200);
    expect(server.received.filter((r) => r.headers['x-hookrelay-event'])).toHaveLength(0);
  });
});

function signFor(body: Buffer): string {
  return `sha256=${createHmac('sha256', SECRETS.cloud).update(body).digest('hex')}`;
}
