import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/bitbucket/envelope.js';
import { buildConfig } from '../../src/config/load-config.js';
import { hasPassedThisRelay, nextHopHeader } from '../../src/relay/hop-marker.js';
import { Router } from '../../src/relay/routing.js';

const config = buildConfig(
  {
    sources: [{ id: 's', platform: 'cloud', secrets: ['x'] }],
    targets: ['a', 'b', 'c'].map((id) => ({ id, url: `http://t/${id}` })),
    routes: [
      {
        source: 's',
        events: ['repo:push'],
        repos: ['acme/*'],
        branches: ['main', 'release/*'],
        targets: ['a'],
      },
      { source: 's', events: ['pullrequest:*'], targets: ['a', 'b'] },
      { source: 's', events: ['*'], repos: ['Acme/Widgets'], targets: ['b', 'c'] },
    ],
  },
  {},
);

const env = (o: Partial<Envelope>): Envelope => ({
  platform: 'cloud',
  eventKey: 'repo:push',
  deliveryId: 'd',
  repository: 'acme/widgets',
  refs: [],
  commits: [],
  ...o,
});
const ref = (name: string) => ({
  name,
  kind: 'branch' as const,
  oldHash: 'a',
  newHash: 'b',
  created: false,
  deleted: false,
  forced: false,
  truncated: false,
});

describe('router', () => {
  const router = new Router(config);
  it('adds each target once, in config order', () => {
    expect(router.match('s', env({ refs: [ref('main')] })).targets).toEqual(['a', 'b', 'c']);
    expect(router.match('s', env({ refs: [ref('feature/x')] })).targets).toEqual(['b', 'c']);
    expect(router.match('s', env({ repository: 'acme/other', refs: [ref('release/2')] })).targets).toEqual([
      'a',
    ]);
    expect(router.match('s', env({ eventKey: 'pullrequest:created', repository: 'x/y' })).targets).toEqual([
      'a',
      'b',
    ]);
    expect(router.match('other', env({ refs: [ref('main')] })).targets).toEqual([]);
  });
});

describe('hop marker', () => {
  it('finds this relay in the hop list or Via, and appends it for the next hop', () => {
    expect(hasPassedThisRelay('r1', { 'x-hookrelay-hop': 'r0, r1' })).toBe(true);
    expect(hasPassedThisRelay('r1', { 'x-hookrelay-hop': 'r10' })).toBe(false);
    expect(hasPassedThisRelay('r1', { via: '1.1 proxy, 1.1 hookrelay-r1' })).toBe(true);
    expect(hasPassedThisRelay('r1', { via: '1.1 hookrelay-r2' })).toBe(false);
    expect(nextHopHeader('r1', undefined)).toBe('r1');
    expect(nextHopHeader('r1', 'r0')).toBe('r0, r1');
  });
});

describe('event ids', () => {
  it('are RFC 9562 version 7 UUIDs that sort by time', async () => {
    const { newEventId } = await import('../../src/ingress/event-id.js');
    const a = newEventId(1_700_000_000_000);
    const b = newEventId(1_700_000_000_001);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.slice(0, 13).replace('-', '')).toBe((1_700_000_000_000).toString(16).padStart(12, '0'));
    expect(a < b).toBe(true);
    expect(newEventId()).not.toBe(newEventId());
  });

  it('carry their shard on a cluster, and the keys follow it', async () => {
    const { newEventId } = await import('../../src/ingress/event-id.js');
    const { makeKeys } = await import('../../src/queue/keys.js');
    const redis = { prefix: 'hr', cluster: [{ host: 'a', port: 1 }], shards: 12 } as never;
    const keys = makeKeys({ redis });
    for (const shard of [0, 7, 11]) {
      const id = newEventId(Date.now(), shard);
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(keys.shardOfId(id)).toBe(shard);
      expect(keys.event(id)).toBe(`{hr:${shard}}:ev:${id}`);
      expect(keys.queuePrefix('ci', shard)).toBe(`{hr:${shard}}`);
    }
    // One repository, one shard: its redeliveries and copies meet the same dedupe keys.
    expect(keys.shardOf('cloud', 'acme/a')).toBe(keys.shardOf('cloud', 'acme/a'));
    const spread = new Set(Array.from({ length: 48 }, (_, i) => keys.shardOf('cloud', `acme/r${i}`)));
    expect(spread.size).toBeGreaterThan(8);
    const single = makeKeys({ redis: { prefix: 'hr', shards: 1 } as never });
    expect(single.event('x-00b')).toBe('hr:ev:x-00b');
  });
});
