import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import type { Config } from '../../src/config/types.js';
import { cloudPush } from '../fixtures/payloads.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';

/*
 * Property: whatever arrives — hostile headers, broken encodings, depth bombs, prototype keys, signed garbage —
 * the ingress answers 4xx, never 5xx, never crashes, and queues nothing.
 */

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let ing: TestIngress;
let config: Config;
let inspect: Redis;

beforeAll(async () => {
  redis = await startTestRedis();
  inspect = new Redis(redis.url);
  config = testConfig(redis.url, { log: { level: 'warn' } });
  ing = await startIngress(config, captureLogs('warn').log);
});
afterAll(async () => {
  await ing.close();
  inspect.disconnect();
  await redis.cleanup();
});

const eventKeys = fc.oneof(
  fc.constantFrom(
    'repo:push',
    'pullrequest:fulfilled',
    'repo:refs_changed',
    'pr:merged',
    'repo:fork',
    'diagnostics:ping',
  ),
  fc.string({ maxLength: 40 }),
);
const contentTypes = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=UTF-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    '',
  ),
  fc.string({ maxLength: 30 }),
);

function depthBomb(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

/** Bodies that are never a valid payload: broken bytes, broken JSON, wrong shapes, bombs, prototype keys. */
const badBodies = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
  fc.string({ maxLength: 300 }).map((s) => Buffer.from(s)),
  fc.constantFrom(
    Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]),
    Buffer.from('{"push": {"changes": "nope"}, "repository": {"full_name": 7}}'),
    Buffer.from('{"__proto__": {"polluted": true}, "push": 1}'),
    Buffer.from('{"constructor": {"prototype": {"polluted": true}}}'),
    Buffer.from('{"\\u005f_proto__": {"polluted": true}}'),
    Buffer.from(`{"n": 1${'0'.repeat(400)}}`),
    Buffer.from('[]'),
    Buffer.from('null'),
    Buffer.from('1e999999'),
    Buffer.from(depthBomb(5000, '[', ']')),
    Buffer.from(`${depthBomb(100, '{"a":', '')}1${'}'.repeat(100)}`),
    Buffer.from('\uFEFF{"push":{}}'),
  ),
  fc
    .jsonValue({ maxDepth: 4 })
    .map((v) =>
      Buffer.from(JSON.stringify(Array.isArray(v) || typeof v !== 'object' || v === null ? v : [v])),
    ),
);

async function assertNothingQueued() {
  expect(await inspect.zcard(`${config.redis.prefix}:events`)).toBe(0);
  expect(await inspect.keys(`${config.redis.prefix}:ev:*`)).toEqual([]);
}

describe('ingress under malformed input', () => {
  it('answers 4xx to random headers and bodies, signed or not', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('cloud', 'dc', 'nope', '%00', '..', 'cloud%2F..'),
        eventKeys,
        contentTypes,
        badBodies,
        fc.oneof(fc.constant('valid'), fc.constant('none'), fc.string({ maxLength: 80 })),
        fc.option(fc.string({ maxLength: 60 })),
        async (source, eventKey, contentType, body, sig, requestId) => {
          const secret = source === 'dc' ? SECRETS.dc : SECRETS.cloud;
          const headers: Record<string, string> = {};
          const safe = (v: string) => v.replace(/[^\x20-\x7e]/g, '');
          if (contentType) headers['content-type'] = safe(contentType);
          if (eventKey) headers['x-event-key'] = safe(eventKey);
          if (requestId !== null) {
            headers['x-request-uuid'] = safe(requestId);
            headers['x-request-id'] = safe(requestId);
          }
          if (sig === 'valid') headers['x-hub-signature'] = sign(secret, body);
          else if (sig !== 'none') headers['x-hub-signature'] = safe(sig);
          const res = await ing.app.inject({
            method: 'POST',
            url: `/hooks/${source}`,
            headers,
            payload: body,
          });
          // DC's unsigned diagnostics:ping is the one 200 here, and it stores nothing.
          if (res.statusCode === 200) {
            expect(res.json()).toEqual({ ok: true, ping: true });
            return;
          }
          expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, res.body).toBeLessThan(500);
          expect(res.json()).toMatchObject({ error: expect.any(String), message: expect.any(String) });
        },
      ),
      { numRuns: 4000 },
    );
    await assertNothingQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
  });

  it('answers 4xx to correctly signed bodies that are not valid payloads for their event key', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ['cloud', 'repo:push'],
          ['cloud', 'pullrequest:created'],
          ['cloud', 'repo:fork'],
          ['dc', 'repo:refs_changed'],
          ['dc', 'pr:opened'],
        ),
        badBodies,
        fc.uuid(),
        async ([source, eventKey], body, requestId) => {
          const res = await ing.app.inject({
            method: 'POST',
            url: `/hooks/${source}`,
            headers: {
              'content-type': 'application/json',
              'x-event-key': eventKey!,
              'x-request-uuid': requestId,
              'x-request-id': requestId,
              'x-hub-signature': sign(source === 'dc' ? SECRETS.dc : SECRETS.cloud, body),
            },
            payload: body,
          });
          expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, res.body).toBeLessThan(500);
        },
      ),
      { numRuns: 3000 },
    );
    await assertNothingQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers 4xx to real, correctly signed payloads damaged in one way (encodings, numbers, keys, types)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...DAMAGES),
        fc.uuid(),
        fc.integer({ min: 1, max: 1_000_000 }),
        async (damage, requestId, n) => {
          const json = JSON.stringify(
            cloudPush({
              ref: `fuzz/${n}`,
              newHash: n.toString(16).padStart(40, '0'),
              message: 'Café déjà vu\n',
            }),
          );
          const { body, headers } = damaged(damage, json, requestId);
          const res = await ing.app.inject({
            method: 'POST',
            url: '/hooks/cloud',
            headers: {
              'content-type': 'application/json',
              'x-event-key': 'repo:push',
              'x-request-uuid': requestId,
              ...headers,
              'x-hub-signature': sign(SECRETS.cloud, body),
            },
            payload: body,
          });
          expect(res.statusCode, `${damage}: ${res.body}`).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, `${damage}: ${res.body}`).toBeLessThan(500);
        },
      ),
      { numRuns: 3000 },
    );
    await assertNothingQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
  });
});

/**
 * Ways to damage a valid, signed Bitbucket push so that it must be refused (the signature still matches). Not
 * here: a UTF-8 byte-order mark before valid JSON, which RFC 8259 lets a parser ignore and the ingress accepts.
 */
const DAMAGES = [
  'gzip',
  'deflate',
  'utf16le',
  'utf16be-bom',
  'latin1',
  'huge-exponent',
  'huge-integer',
  'nan-literal',
  'proto-and-constructor',
  'duplicate-key',
  'trailing-garbage',
  'truncated',
  'nul-byte',
  'text-plain',
  'form-urlencoded',
  'multipart',
  'xml',
  'json-lookalike',
  'no-content-type',
  'bad-delivery-id',
  'long-delivery-id',
  'wrong-event-key',
] as const;

function damaged(
  kind: (typeof DAMAGES)[number],
  json: string,
  requestId: string,
): { body: Buffer; headers: Record<string, string> } {
  const utf8 = Buffer.from(json);
  const repo = '"full_name":"acme/widgets"';
  const swapRepo = (to: string) => Buffer.from(json.split(repo).join(to));
  switch (kind) {
    case 'gzip':
      return { body: gzipSync(utf8), headers: { 'content-encoding': 'gzip' } };
    case 'deflate':
      return { body: deflateSync(utf8), headers: { 'content-encoding': 'deflate' } };
    case 'utf16le':
      return {
        body: Buffer.from(json, 'utf16le'),
        headers: { 'content-type': 'application/json; charset=utf-16le' },
      };
    case 'utf16be-bom':
      return {
        body: Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(json, 'utf16le').swap16()]),
        headers: { 'content-type': 'application/json; charset=utf-16' },
      };
    case 'latin1':
      return {
        body: Buffer.from(json, 'latin1'),
        headers: { 'content-type': 'application/json; charset=iso-8859-1' },
      };
    case 'huge-exponent':
      return { body: swapRepo('"full_name":1e999999'), headers: {} };
    case 'huge-integer':
      return { body: swapRepo(`"full_name":${'9'.repeat(5000)}`), headers: {} };
    case 'nan-literal':
      return { body: swapRepo('"full_name":NaN'), headers: {} };
    case 'proto-and-constructor':
      return {
        body: swapRepo(
          '"__proto__":{"polluted":true},"full_name":{"constructor":{"prototype":{"polluted":true}}}',
        ),
        headers: {},
      };
    case 'duplicate-key':
      return { body: Buffer.from(`${json.slice(0, -1)},"push":1}`), headers: {} };
    case 'trailing-garbage':
      return { body: Buffer.from(`${json}}`), headers: {} };
    case 'truncated':
      return { body: utf8.subarray(0, Math.floor(utf8.length / 2)), headers: {} };
    case 'nul-byte':
      return {
        body: Buffer.concat([utf8.subarray(0, 10), Buffer.from([0]), utf8.subarray(10)]),
        headers: {},
      };
    case 'text-plain':
      return { body: utf8, headers: { 'content-type': 'text/plain' } };
    case 'form-urlencoded':
      return {
        body: Buffer.from(`payload=${encodeURIComponent(json)}`),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      };
    case 'multipart':
      return { body: utf8, headers: { 'content-type': 'multipart/form-data; boundary=x' } };
    case 'xml':
      return {
        body: Buffer.from('<push><ref>main</ref></push>'),
        headers: { 'content-type': 'application/xml' },
      };
    case 'json-lookalike':
      return { body: utf8, headers: { 'content-type': 'application/jsonx' } };
    case 'no-content-type':
      return { body: utf8, headers: { 'content-type': '' } };
    case 'bad-delivery-id':
      return { body: utf8, headers: { 'x-request-uuid': `../${requestId} x` } };
    case 'long-delivery-id':
      return { body: utf8, headers: { 'x-request-uuid': requestId.repeat(5) } };
    case 'wrong-event-key':
      return { body: utf8, headers: { 'x-event-key': 'pullrequest:created' } };
  }
}
