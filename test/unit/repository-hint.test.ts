import { describe, expect, it } from 'vitest';
import { normalise } from '../../src/bitbucket/normalise.js';
import { repositoryHint } from '../../src/ingress/repository-hint.js';
import { cloudPullRequest, cloudPush, dcPrMerged, dcRefsChanged } from '../fixtures/payloads.js';

describe('the repository read off the raw bytes (the shard hint on a cluster)', () => {
  it("is the envelope's repository for Cloud and Data Center pushes and pull requests", () => {
    const cases = [
      ['cloud', 'repo:push', cloudPush({ repo: 'acme/lib-7' })],
      ['cloud', 'pullrequest:fulfilled', cloudPullRequest()],
      ['datacenter', 'repo:refs_changed', dcRefsChanged()],
      ['datacenter', 'pr:merged', dcPrMerged()],
    ] as const;
    for (const [platform, eventKey, payload] of cases) {
      const body = Buffer.from(JSON.stringify(payload));
      const envelope = normalise({ platform, eventKey, deliveryId: 'd', payload });
      expect(repositoryHint(platform, body), eventKey).toBe(envelope.repository);
    }
  });

  it('is null when nothing looks like a repository', () => {
    expect(repositoryHint('cloud', Buffer.from('{"push":{}}'))).toBeNull();
    expect(repositoryHint('datacenter', Buffer.from('not json at all'))).toBeNull();
  });
});
