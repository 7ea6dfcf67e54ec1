import { describe, expect, it } from 'vitest';
import { explainRouting, MASK, maskHeaders } from '../../src/admin/console/timeline.js';
import { matchesEvent } from '../../src/admin/event-match.js';
import type { EventMeta } from '../../src/admin/event-view.js';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import { latencyBucket, summarise } from '../../src/queue/target-stats.js';

const envelope: Envelope = {
  platform: 'cloud',
  eventKey: 'repo:push',
  deliveryId: 'd-1',
  repository: 'acme/widgets',
  refs: [
    {
      name: 'release/2.4',
      kind: 'branch',
      oldHash: 'a'.repeat(40),
      newHash: `3f2a9c1${'0'.repeat(33)}`,
      created: false,
      deleted: false,
      forced: false,
      truncated: false,
    },
  ],
  commits: [],
  actor: { name: 'Ada', uuid: '{7d3a}' },
};
const meta: EventMeta = { sourceId: 'cloud', receivedAt: 1_000, envelope, targets: ['ci'] };

describe('matchesEvent', () => {
  it('matches branch globs, commit prefixes (any case), actors and ids, and nothing else', () => {
    expect(matchesEvent('e1', meta, { branch: 'release/*' })).toBe(true);
    expect(matchesEvent('e1', meta, { branch: 'main' })).toBe(false);
    expect(matchesEvent('e1', meta, { commit: '3f2a' })).toBe(true);
    expect(matchesEvent('e1', meta, { commit: '3f2b' })).toBe(false);
    expect(matchesEvent('e1', meta, { actor: 'Ad*' })).toBe(true);
    expect(matchesEvent('e1', meta, { actor: 'Bob' })).toBe(false);
    expect(matchesEvent('e1', meta, { eventId: 'e2' })).toBe(false);
    expect(matchesEvent('e1', meta, { deliveryId: 'd-1', repo: 'acme/*', since: 1_000, until: 1_001 })).toBe(
      true,
    );
    expect(matchesEvent('e1', meta, { until: 1_000 })).toBe(false);
  });

  it('an expired event matches only filters that ask nothing of the event', () => {
    expect(matchesEvent('e1', null, {})).toBe(true);
    expect(matchesEvent('e1', null, { eventId: 'e1' })).toBe(true);
    expect(matchesEvent('e1', null, { repo: '*' })).toBe(false);
  });
});

describe('timeline pieces', () => {
  it('masks header values that can carry a secret, keeps the others', () => {
    const masked = Object.fromEntries(
      maskHeaders({
        'x-hub-signature': 'sha256=abc',
        authorization: 'Bearer t',
        'x-event-key': 'repo:push',
      }),
    );
    expect(masked).toEqual({ 'x-hub-signature': MASK, authorization: MASK, 'x-event-key': 'repo:push' });
  });

  it('says which condition of each route did not match', () => {
    const route = (id: string, extra: object) => ({
      id,
      source: 'cloud',
      events: ['repo:push'],
      repos: ['**'],
      targets: ['ci'],
      coalesce: 'none' as const,
      skipSuperseded: false,
      ...extra,
    });
    const lines = explainRouting(
      {
        routes: [
          route('all', {}),
          route('main-only', { branches: ['main'] }),
          route('gadgets', { repos: ['acme/gadgets'] }),
          route('prs', { events: ['pullrequest:*'] }),
        ],
      },
      'cloud',
      envelope,
    );
    expect(lines[0]).toBe('route all: matched → ci');
    expect(lines[1]).toContain('no changed branch matches main');
    expect(lines[2]).toContain('repository acme/widgets is not one of acme/gadgets');
    expect(lines[3]).toContain('event key repo:push is not one of pullrequest:*');
    expect(explainRouting({ routes: [] }, 'dc', envelope)).toEqual(['source dc has no routes']);
  });
});

describe('target attempt aggregates', () => {
  it('puts a duration in the first bucket whose bound holds it', () => {
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(25)).toBe(0);
    expect(latencyBucket(26)).toBe(1);
    expect(latencyBucket(30_001)).toBe(10);
  });

  it('sums buckets over periods into a success rate and bucket-bound percentiles', () => {
    const s = summarise([{ ok: '90', b2: '90' }, { ok: '5', fail: '5', b2: '4', b6: '6' }, {}]);
    expect(s.attempts).toBe(100);
    expect(s.successRate).toBeCloseTo(0.95);
    expect(s.p50Ms).toBe(100);
    expect(s.p95Ms).toBe(2500);
    expect(summarise([{}])).toEqual({ attempts: 0, successRate: null, p50Ms: null, p95Ms: null });
  });
});
