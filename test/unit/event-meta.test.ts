import { describe, expect, it } from 'vitest';
import { normalise } from '../../src/bitbucket/normalise.js';
import { decodeMeta, encodeMeta } from '../../src/queue/event-meta.js';
import type { EventMeta } from '../../src/queue/event-store.js';
import { cloudPush } from '../fixtures/payloads.js';

function routedMeta(): EventMeta {
  return {
    sourceId: 'cloud',
    receivedAt: 1_790_000_000_000,
    envelope: normalise({
      platform: 'cloud',
      eventKey: 'repo:push',
      deliveryId: 'd-1',
      payload: cloudPush(),
    }),
    targets: ['jenkins', 'buildkite'],
    clientIp: '104.192.136.1',
  };
}

describe('event meta as stored', () => {
  it('the fan-out’s compressed meta reads back as written, and is smaller than its JSON', () => {
    const meta = routedMeta();
    const json = JSON.stringify(meta);
    const stored = encodeMeta(json);
    expect(decodeMeta(stored)).toEqual(meta);
    expect(stored.length).toBeLessThan(Buffer.byteLength(json));
  });

  it('reads the ingress’s plain JSON meta too', () => {
    const meta = routedMeta();
    expect(decodeMeta(Buffer.from(JSON.stringify(meta)))).toEqual(meta);
  });

  it('absent or unreadable: null, never a throw', () => {
    expect(decodeMeta(null)).toBeNull();
    expect(decodeMeta(Buffer.alloc(0))).toBeNull();
    expect(decodeMeta(Buffer.from('{"sourceId":'))).toBeNull();
    expect(decodeMeta(Buffer.from([0x00, 0xff, 0x13, 0x37]))).toBeNull();
  });
});
