import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventFamily } from '../../src/bitbucket/event-keys.js';
import { sign } from '../../src/bitbucket/signature.js';
import type { Config } from '../../src/config/types.js';
import { cloudPullRequest, cloudPush, dcPrMerged, dcRefsChanged } from '../fixtures/payloads.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';

/*
 * Property: whatever arrives — hostile headers, broken encodings, depth bombs, prototype keys, signed garbage —
 * the ingress never answers 5xx and never crashes. Unsigned or wrongly signed: 4xx, nothing stored. Signed:
 * 4xx only for a malformed header (content type, event key, delivery id); a signed body that is not UTF-8,
 * not JSON, or JSON of the wrong shape or field types is stored (202) and quarantined by the fan-out, and
 * nothing of it is delivered.
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

/** Events accepted by a test here, not checked yet: whether a valid payload of family `other` may be routed. */
const accepted = new Map<string, { what: string; otherFamily: boolean }>();

/**
 * The fan-out quarantined every accepted event (or, for family `other`, routed it: it is authentic), and not
 * one delivery job exists for a quarantined one.
 */
async function assertNothingQuarantinedQueued() {
  const queue = ing.runtime.queues.get('ci')!;
  for (const [id, { what, otherFamily }] of accepted) {
    const decision = await routed(ing, id);
    if (decision.state === 'duplicate') continue;
    if (!(otherFamily && decision.state === 'routed'))
      expect(decision, what).toMatchObject({ state: 'quarantined', targets: [] });
    if (decision.state === 'quarantined') expect(await queue.getJob(`${id}.ci`)).toBeUndefined();
  }
  accepted.clear();
}

/**
 * A signed answer past the signature: refused (a malformed header), a copy of a stored event, or stored and
 * then quarantined by the fan-out (checked by assertNothingQuarantinedQueued). With `otherFamily`, a JSON
 * object is also a valid payload of its family (`other` reads no required field) and may be stored and
 * routed: it is authentic.
 */
function expectRefusedOrQuarantined(status: number, body: string, what = '', otherFamily = false) {
  expect(status, `${what} ${body}`).toBeLessThan(500);
  if (status >= 400) return;
  const json = JSON.parse(body);
  if (status === 200) expect(json.duplicate, body).toBe(true);
  else {
    expect(json, `${what} ${body}`).toMatchObject({ duplicate: false, state: 'received' });
    accepted.set(String(json.id), { what: `${what} ${body}`, otherFamily });
  }
}

describe('ingress under malformed input', () => {
  it('never answers 5xx to random headers and bodies: unsigned 4xx, signed 4xx or quarantined', async () => {
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
          if (res.statusCode === 200 && res.json().ping) {
            expect(res.json()).toEqual({ ok: true, ping: true });
            return;
          }
          if (sig === 'valid' && res.statusCode < 300) {
            // A key the source's platform does not know (repo:fork, a DC key on Cloud) is family `other`:
            // any JSON object is a valid payload of it.
            const platform = source === 'dc' ? 'datacenter' : 'cloud';
            const other = eventFamily(platform, headers['x-event-key'] ?? '') === 'other';
            expectRefusedOrQuarantined(res.statusCode, res.body, eventKey ?? '', other);
            return;
          }
          expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
          expect(res.statusCode, res.body).toBeLessThan(500);
          expect(res.json()).toMatchObject({ error: expect.any(String), message: expect.any(String) });
        },
      ),
      { numRuns: 4000 },
    );
    await assertNothingQuarantinedQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
  });

  it('refuses (4xx) or quarantines correctly signed bodies that are not valid payloads for their event key', async () => {
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
          expectRefusedOrQuarantined(res.statusCode, res.body, eventKey, eventKey === 'repo:fork');
        },
      ),
      { numRuns: 3000 },
    );
    await assertNothingQuarantinedQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses or quarantines real, correctly signed payloads damaged in one way (encodings, numbers, keys, types)', async () => {
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
          if (REFUSED_DAMAGES.has(damage)) {
            expect(res.statusCode, `${damage}: ${res.body}`).toBeGreaterThanOrEqual(400);
            expect(res.statusCode, `${damage}: ${res.body}`).toBeLessThan(500);
          } else {
            expect([200, 202], `${damage}: ${res.body}`).toContain(res.statusCode);
            expectRefusedOrQuarantined(res.statusCode, res.body, damage);
          }
        },
      ),
      { numRuns: 3000 },
    );
    await assertNothingQuarantinedQueued();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
  });
});

describe('type confusion in signed payloads', () => {
  it('quarantines a wrong type in any field the relay reads: 202 or 200, never 5xx, nothing delivered', async () => {
    const stored: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...READ_FIELDS),
        fc.uuid(),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.context(),
        async ([source, eventKey, make, path, kind], requestId, n, ctx) => {
          const payload = make(n);
          const wrong = fc.sample(WRONG[kind], { numRuns: 1, seed: n })[0];
          if (!setPath(payload, path, wrong)) return;
          ctx.log(`${eventKey} ${path} = ${JSON.stringify(wrong)?.slice(0, 80)}`);
          const body = Buffer.from(JSON.stringify(payload));
          const res = await ing.app.inject({
            method: 'POST',
            url: `/hooks/${source}`,
            headers: {
              'content-type': 'application/json',
              'x-event-key': eventKey,
              'x-request-uuid': requestId,
              'x-request-id': requestId,
              'x-hub-signature': sign(source === 'dc' ? SECRETS.dc : SECRETS.cloud, body),
            },
            payload: body,
          });
          expect([200, 202], `${path}: ${res.body}`).toContain(res.statusCode);
          expectRefusedOrQuarantined(res.statusCode, res.body, path);
          stored.push(String(res.json().id));
        },
      ),
      { numRuns: 1500 },
    );
    // Every one quarantined and not one delivery job for any of them (a 200 is a copy of one of them).
    const decided = accepted.size;
    await assertNothingQuarantinedQueued();
    const queue = ing.runtime.queues.get('ci')!;
    for (const id of new Set(stored)) expect(await queue.getJob(`${id}.ci`)).toBeUndefined();
    expect(decided).toBeGreaterThan(100);
  });
});

type Kind = 'string' | 'integer' | 'boolean' | 'object' | 'array' | 'id';

/** Values of every JSON type but the expected one (`id`: a DC user id, a string or an integer). */
const deepArray = fc.integer({ min: 2, max: 100 }).map((d) => JSON.parse(`${'['.repeat(d)}${']'.repeat(d)}`));
const anyString = fc.string({ maxLength: 20 });
const fraction = fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x));
const anObject = fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 });
const anArray = fc.oneof(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }), deepArray);
const WRONG: Record<Kind, fc.Arbitrary<unknown>> = {
  string: fc.oneof(fc.integer(), fraction, fc.boolean(), anObject, anArray),
  integer: fc.oneof(anyString, fraction, fc.boolean(), anObject, anArray),
  boolean: fc.oneof(anyString, fc.integer(), anObject, anArray),
  object: fc.oneof(anyString, fc.integer(), fc.boolean(), anArray),
  array: fc.oneof(anyString, fc.integer(), fc.boolean(), anObject),
  id: fc.oneof(fraction, fc.boolean(), anObject, anArray),
};

/** Sets `a.b.0.c`; false when a parent is missing. */
function setPath(root: unknown, path: string, value: unknown): boolean {
  const parts = path.split('.');
  let at = root as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    const next = at[part];
    if (next === null || typeof next !== 'object') return false;
    at = next as Record<string, unknown>;
  }
  at[parts.at(-1)!] = value;
  return true;
}

type Make = (n: number) => Record<string, unknown>;
const unique = (p: object, n: number) => ({ ...p, fuzz: n }) as Record<string, unknown>;
const cloudPushOf: Make = (n) => unique(cloudPush({ ref: `fuzz/${n}` }), n);
const cloudPrOf: Make = (n) => unique(cloudPullRequest(), n);
const dcPushOf: Make = (n) => unique(dcRefsChanged({ ref: `fuzz/${n}` }), n);
const dcPrOf: Make = (n) => unique(dcPrMerged(), n);
const dcModifiedOf: Make = (n) =>
  unique(
    {
      eventKey: 'repo:modified',
      old: { slug: 'a', project: { key: 'P' } },
      new: { slug: 'b', project: { key: 'P' } },
    },
    n,
  );
const dcProjectOf: Make = (n) =>
  unique({ eventKey: 'project:modified', old: { key: 'OLD' }, new: { key: 'NEW' } }, n);
const cloudActor = ['actor', 'actor.nickname', 'actor.display_name', 'actor.account_id', 'actor.uuid'];
const dcActor = ['actor', 'actor.name', 'actor.displayName', 'actor.emailAddress', 'actor.slug'];
const kindOf = (path: string): Kind => {
  const last = path.split('.').at(-1)!;
  if (
    [
      'actor',
      'push',
      'new',
      'old',
      'target',
      'author',
      'user',
      'repository',
      'project',
      'ref',
      'toCommit',
      'pullrequest',
      'pullRequest',
      'source',
      'destination',
      'branch',
      'commit',
      'merge_commit',
      'fromRef',
      'toRef',
      'properties',
      'mergeCommit',
      '0',
    ].includes(last)
  )
    return 'object';
  if (['changes', 'commits'].includes(last)) return 'array';
  if (['created', 'closed', 'forced', 'truncated'].includes(last)) return 'boolean';
  if (last === 'id')
    return path.startsWith('actor')
      ? 'id'
      : path.endsWith('Request.id') || path.endsWith('request.id')
        ? 'integer'
        : 'string';
  return 'string';
};

/** Every field the relay reads (normalise.ts), per family: source, key, payload, path, expected type. */
const READ_FIELDS: [string, string, Make, string, Kind][] = (
  [
    [
      'cloud',
      'repo:push',
      cloudPushOf,
      [
        'repository',
        'repository.full_name',
        'repository.uuid',
        ...cloudActor,
        'push',
        'push.changes',
        'push.changes.0',
        'push.changes.0.new',
        'push.changes.0.old',
        'push.changes.0.new.name',
        'push.changes.0.new.type',
        'push.changes.0.new.target',
        'push.changes.0.new.target.hash',
        'push.changes.0.new.target.message',
        'push.changes.0.new.target.author',
        'push.changes.0.new.target.author.raw',
        'push.changes.0.new.target.author.user',
        'push.changes.0.old.target',
        'push.changes.0.old.target.hash',
        'push.changes.0.created',
        'push.changes.0.closed',
        'push.changes.0.forced',
        'push.changes.0.truncated',
        'push.changes.0.commits',
        'push.changes.0.commits.0',
        'push.changes.0.commits.0.hash',
        'push.changes.0.commits.0.message',
        'push.changes.0.commits.0.author',
        'push.changes.0.commits.0.author.raw',
      ],
    ],
    [
      'cloud',
      'pullrequest:fulfilled',
      cloudPrOf,
      [
        'repository.full_name',
        ...cloudActor,
        'pullrequest',
        'pullrequest.id',
        'pullrequest.title',
        'pullrequest.state',
        'pullrequest.source',
        'pullrequest.source.branch',
        'pullrequest.source.branch.name',
        'pullrequest.source.commit',
        'pullrequest.source.commit.hash',
        'pullrequest.destination',
        'pullrequest.destination.branch',
        'pullrequest.destination.branch.name',
        'pullrequest.destination.commit',
        'pullrequest.destination.commit.hash',
        'pullrequest.merge_commit',
        'pullrequest.merge_commit.hash',
      ],
    ],
    [
      'cloud',
      'repo:fork',
      cloudPrOf,
      ['repository', 'repository.full_name', 'project', 'project.key', ...cloudActor],
    ],
    [
      'dc',
      'repo:refs_changed',
      dcPushOf,
      [
        'repository',
        'repository.slug',
        'repository.project',
        'repository.project.key',
        ...dcActor,
        'actor.id',
        'changes',
        'changes.0',
        'changes.0.ref',
        'changes.0.ref.displayId',
        'changes.0.ref.type',
        'changes.0.fromHash',
        'changes.0.toHash',
        'changes.0.type',
        'commits',
        'commits.0',
        'commits.0.id',
        'commits.0.message',
        'commits.0.author',
        'toCommit',
        'toCommit.id',
        'toCommit.message',
        'toCommit.author',
      ],
    ],
    [
      'dc',
      'pr:merged',
      dcPrOf,
      [
        ...dcActor,
        'pullRequest',
        'pullRequest.id',
        'pullRequest.title',
        'pullRequest.state',
        'pullRequest.fromRef',
        'pullRequest.fromRef.displayId',
        'pullRequest.fromRef.latestCommit',
        'pullRequest.toRef',
        'pullRequest.toRef.displayId',
        'pullRequest.toRef.latestCommit',
        'pullRequest.toRef.repository',
        'pullRequest.toRef.repository.slug',
        'pullRequest.properties',
        'pullRequest.properties.mergeCommit',
        'pullRequest.properties.mergeCommit.id',
      ],
    ],
    ['dc', 'repo:modified', dcModifiedOf, ['new', 'new.slug', 'new.project', 'new.project.key']],
    ['dc', 'project:modified', dcProjectOf, ['new', 'new.key']],
  ] as [string, string, Make, string[]][]
).flatMap(([source, key, make, paths]) =>
  paths.map((p) => [source, key, make, p, kindOf(p)] as [string, string, Make, string, Kind]),
);

/**
 * Ways to damage a valid, signed Bitbucket push (the signature still matches). Not sent as JSON, or with a
 * malformed delivery id: refused (REFUSED_DAMAGES). Any other damage to the bytes (not UTF-8, not JSON, the
 * wrong shape or field types): signed, so kept and quarantined by the fan-out. Not here: a UTF-8 byte-order
 * mark before valid JSON, which RFC 8259 lets a parser ignore and the relay accepts.
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

/**
 * Damages to what the ingress checks before the body (content type, delivery id): refused. A compressed body
 * is bytes like any other: signed, so kept (and quarantined: not UTF-8).
 */
const REFUSED_DAMAGES: ReadonlySet<string> = new Set([
  'text-plain',
  'form-urlencoded',
  'multipart',
  'xml',
  'json-lookalike',
  'no-content-type',
  'bad-delivery-id',
  'long-delivery-id',
]);

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
