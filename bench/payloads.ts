import { randomUUID } from 'node:crypto';
import { sign } from '../src/bitbucket/signature.js';
import { cloudPush } from '../test/fixtures/payloads.js';

export interface BenchRequest {
  body: Buffer;
  headers: Record<string, string>;
}

/**
 * Signed Bitbucket Cloud pushes of 6–20 KB, each a distinct change with a unique request id, so neither
 * dedupe key short-cuts the work.
 */
export function makeSignedPushes(count: number, secret: string): BenchRequest[] {
  const out: BenchRequest[] = [];
  for (let i = 0; i < count; i++) {
    const hash = (n: number) => `${n.toString(16).padStart(8, '0')}${'c0ffee'.repeat(6)}`.slice(0, 40);
    const payload = cloudPush({ oldHash: hash(i * 2 + 1), newHash: hash(i * 2 + 2), commits: 2 + (i % 4) });
    // Pad with a realistic field so sizes spread over 6–20 KB like real pushes with several commits.
    const pad = 'x'.repeat((i * 7919) % 12000);
    const body = Buffer.from(JSON.stringify({ ...payload, description: pad }));
    out.push({
      body,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Bitbucket-Webhooks/2.0',
        'x-event-key': 'repo:push',
        'x-request-uuid': randomUUID(),
        'x-hook-uuid': '{d3f1b2a4-5c6e-4f70-8192-a3b4c5d6e7f8}',
        'x-attempt-number': '1',
        'x-hub-signature': sign(secret, body),
      },
    });
  }
  return out;
}

export function averageSize(reqs: BenchRequest[]): number {
  return reqs.reduce((n, r) => n + r.body.length, 0) / reqs.length;
}
