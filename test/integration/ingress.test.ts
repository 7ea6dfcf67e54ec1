import { describe, expect, it } from 'vitest';
import { relayTestRequest } from '../../src/bitbucket/relay-test-event.js';
import { sign } from '../../src/bitbucket/signature.js';
import type { Config } from '../../src/config/types.js';
import { makeKeys } from '../../src/queue/keys.js';
import {
  cloudPullRequest,
  cloudPush,
  dcCommentAdded,
  dcPrMerged,
  dcRefsChanged,
  HASH,
} from '../fixtures/payloads.js';
import { cloudRequest, dcRequest, send } from '../helpers/bitbucket.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress, useIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis, useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';

const db = useTestRedis();

const ingress = useIngress(() => db.url);

async function jobCount(config: Config, target = 'ci'): Promise<number> {
  const keys = makeKeys(config);
  return (
    (await db.inspect.llen(keys.queueKey(target, 'wait'))) +
    (await db.inspect.zcard(keys.queueKey(target, 'prioritized'))) +
    (await db.inspect.zcard(keys.queueKey(target, 'delayed')))
  );
}

async function eventCount(config: Config): Promise<number> {
  return db.inspect.zcard(makeKeys(config).eventIndex);
}

describe('accepting webhooks', () => {
  it('answers 202 once the event is stored, then the fan-out queues one delivery per target', async () => {
    const { ing, config } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'ci2', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [{ source: 'cloud', targets: ['ci', 'ci2'] }],
    });
    const req = cloudRequest('repo:push', cloudPush());
    const res = await send(ing.url, 'cloud', req);
    expect(res.status).toBe(202);
    expect(res.json).toEqual({ id: expect.any(String), duplicate: false, state: 'received' });
    const id = String(res.json.id);
    expect((await routed(ing, id)).targets).toEqual(['ci', 'ci2']);
    expect(await jobCount(config, 'ci')).toBe(1);
    expect(await jobCount(config, 'ci2')).toBe(1);
    const job = await ing.runtime.queues.get('ci')!.getJob(`${id}.ci`);
    expect(job?.data).toMatchObject({ eventId: id, targetId: 'ci', idempotencyKey: `${id}.ci` });
    const stored = await ing.runtime.store.read(id);
    expect(stored?.body.equals(req.body)).toBe(true);
    expect(stored?.headers['x-hub-signature']).toBe(req.headers['x-hub-signature']);
    expect(stored?.headers['x-request-uuid']).toBe(req.headers['x-request-uuid']);
    expect(stored?.envelope).toMatchObject({
      platform: 'cloud',
      eventKey: 'repo:push',
      repository: 'acme/widgets',
    });
    // The payload is stored once, whatever the number of targets.
    expect(await db.inspect.keys(makeKeys(config).event('*'))).toHaveLength(1);
  });

  it('accepts the old secret during rotation', async () => {
    const { ing } = await ingress();
    const res = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush(), { secret: SECRETS.cloudOld }),
    );
    expect(res.status).toBe(202);
  });

  it('accepts a signed Data Center refs_changed with charset in the content type', async () => {
    const { ing, config } = await ingress();
    const res = await send(ing.url, 'dc', dcRequest('repo:refs_changed', dcRefsChanged()));
    expect(res.status).toBe(202);
    await routed(ing, String(res.json.id));
    expect(await jobCount(config)).toBe(1);
    const stored = await ing.runtime.store.read(String(res.json.id));
    expect(stored?.envelope.repository).toBe('ACME/widgets');
    expect(stored?.envelope.refs[0]).toMatchObject({ name: 'main', oldHash: HASH.a, newHash: HASH.b });
  });

  it('answers Data Center "Test connection" (unsigned diagnostics:ping) with 200 and queues nothing', async () => {
    const { ing, config } = await ingress();
    const res = await send(ing.url, 'dc', dcRequest('diagnostics:ping', { test: true }, { secret: null }));
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true, ping: true });
    expect(await eventCount(config)).toBe(0);
  });

  it("answers the CLI's signed hookrelay:test with 200 and stores nothing; unsigned or wrongly signed it is refused", async () => {
    const { ing, config } = await ingress();
    const probe = relayTestRequest(SECRETS.cloud, 'cloud');
    const ok = await send(ing.url, 'cloud', { body: Buffer.from(probe.body), headers: probe.headers });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ ok: true, test: true, source: 'cloud' });
    const dcProbe = relayTestRequest(SECRETS.dc, 'dc');
    expect(
      (await send(ing.url, 'dc', { body: Buffer.from(dcProbe.body), headers: dcProbe.headers })).status,
    ).toBe(200);
    const { 'x-hub-signature': _, ...unsigned } = probe.headers;
    expect((await send(ing.url, 'cloud', { body: Buffer.from(probe.body), headers: unsigned })).status).toBe(
      401,
    );
    const forged = relayTestRequest('not-the-secret', 'cloud');
    expect(
      (await send(ing.url, 'cloud', { body: Buffer.from(forged.body), headers: forged.headers })).status,
    ).toBe(401);
    expect(await eventCount(config)).toBe(0);
    expect(await jobCount(config)).toBe(0);
  });

  it('stores an event that matches no route (so ops can see it arrived) but queues nothing', async () => {
    const { ing, config } = await ingress({
      routes: [{ source: 'cloud', events: ['pullrequest:*'], targets: ['ci'] }],
    });
    const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
    expect(res.status).toBe(202);
    expect(await routed(ing, String(res.json.id))).toMatchObject({ state: 'routed', targets: [] });
    expect(await jobCount(config)).toBe(0);
    expect(await eventCount(config)).toBe(1);
  });
});

describe('rejections', () => {
  it('404 for an unknown source', async () => {
    const { ing } = await ingress();
    const res = await send(ing.url, 'nope', cloudRequest('repo:push', cloudPush()));
    expect(res.status).toBe(404);
    expect(res.json.error).toBe('SOURCE_NOT_FOUND');
  });

  it('413 for a body over the limit, by Content-Length and when chunked', async () => {
    const { ing, config } = await ingress({ ingress: { host: '127.0.0.1', port: 0, bodyLimit: 4096 } });
    const big = cloudRequest('repo:push', { ...cloudPush(), pad: 'x'.repeat(8000) });
    const res = await send(ing.url, 'cloud', big);
    expect(res.status).toBe(413);
    expect(res.json.error).toBe('PAYLOAD_TOO_LARGE');
    // Chunked: no Content-Length, the limit is enforced while reading.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(big.body.subarray(0, 3000));
        c.enqueue(big.body.subarray(3000));
        c.close();
      },
    });
    const chunked = await fetch(`${ing.url}/hooks/cloud`, {
      method: 'POST',
      headers: big.headers,
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(((await chunked.json()) as { error: string }).error).toBe('PAYLOAD_TOO_LARGE');
    expect(await eventCount(config)).toBe(0);
  });

  it('415 when the body is not JSON', async () => {
    const { ing } = await ingress();
    const req = cloudRequest('repo:push', cloudPush());
    const res = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'content-type': 'text/plain' },
    });
    expect(res.status).toBe(415);
    expect(res.json.error).toBe('UNSUPPORTED_MEDIA_TYPE');
    const form = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
  });

  it('401 for a missing, wrong, sha1 or re-serialised signature', async () => {
    const { ing, config } = await ingress();
    const req = cloudRequest('repo:push', cloudPush());
    const missing = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush(), { secret: null }));
    expect(missing.status).toBe(401);
    expect(missing.json.error).toBe('SIGNATURE_MISSING');
    const wrong = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush(), { secret: 'not-the-secret' }),
    );
    expect(wrong.json.error).toBe('SIGNATURE_INVALID');
    const sha1 = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'x-hub-signature': `sha1=${'a'.repeat(40)}` },
    });
    expect(sha1.status).toBe(401);
    expect(sha1.json.error).toBe('SIGNATURE_ALGORITHM_UNSUPPORTED');
    // Same JSON, different bytes: the signature covers the raw bytes, not the parsed value.
    const compact = Buffer.from(JSON.stringify(JSON.parse(req.body.toString())));
    const reserialised = await send(ing.url, 'cloud', { body: compact, headers: req.headers });
    expect(reserialised.status).toBe(401);
    // Data Center requests with another source's secret fail too.
    const crossed = await send(
      ing.url,
      'dc',
      dcRequest('repo:refs_changed', dcRefsChanged(), { secret: SECRETS.cloud }),
    );
    expect(crossed.status).toBe(401);
    expect(await eventCount(config)).toBe(0);
  });

  it('400 for missing or malformed headers, each with a stable code; a signed body that is not JSON is kept', async () => {
    const { ing, config } = await ingress();
    const noKey = cloudRequest('repo:push', cloudPush());
    delete noKey.headers['x-event-key'];
    expect((await send(ing.url, 'cloud', noKey)).json.error).toBe('HEADER_MISSING');

    const malformed = await send(ing.url, 'cloud', cloudRequest('repo push', cloudPush()));
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toBe('EVENT_KEY_MALFORMED');

    const noId = dcRequest('repo:refs_changed', dcRefsChanged());
    delete noId.headers['x-request-id'];
    const noIdRes = await send(ing.url, 'dc', noId);
    expect(noIdRes.status).toBe(400);
    expect(noIdRes.json.error).toBe('HEADER_MISSING');
    expect(String(noIdRes.json.message)).toContain('x-request-id');

    const body = Buffer.from('{"push": ');
    const badJson = await send(ing.url, 'cloud', {
      body,
      headers: { ...cloudRequest('repo:push', {}).headers, 'x-hub-signature': sign(SECRETS.cloud, body) },
    });
    // Signed, so authentic: stored and quarantined by the fan-out, never refused (Bitbucket does not retry a 4xx).
    expect(badJson.status).toBe(202);
    expect(await routed(ing, String(badJson.json.id))).toMatchObject({
      state: 'quarantined',
      quarantine: 'body is not valid JSON',
      targets: [],
    });
    expect(await eventCount(config)).toBe(1);
  });

  it('508 for a request that already passed through this relay', async () => {
    const { ing, config } = await ingress();
    // No relay.id configured: this deployment's generated one.
    const self = await ing.runtime.relayId.get();
    const req = cloudRequest('repo:push', cloudPush());
    const hop = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'x-hookrelay-hop': `other, ${self}` },
    });
    expect(hop.status).toBe(508);
    expect(hop.json.error).toBe('LOOP_DETECTED');
    const via = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, via: `1.1 hookrelay-${self}` },
    });
    expect(via.status).toBe(508);
    // Another relay's marker passes.
    const other = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'x-hookrelay-hop': 'relay-b' },
    });
    expect(other.status).toBe(202);
    expect(await eventCount(config)).toBe(1);
    const stored = await ing.runtime.store.read(String(other.json.id));
    expect(stored?.headers['x-hookrelay-hop']).toBe('relay-b');
  });

  it('every rejection is JSON with error and message', async () => {
    const { ing } = await ingress();
    const res = await fetch(`${ing.url}/nowhere`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'NOT_FOUND', message: expect.any(String) });
  });
});

describe('dedupe', () => {
  it('answers a redelivery with the same request id as a duplicate and queues nothing', async () => {
    const { ing, config } = await ingress();
    const req = cloudRequest('repo:push', cloudPush(), { requestId: 'same-uuid-1' });
    const first = await send(ing.url, 'cloud', req);
    const again = await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, 'x-attempt-number': '2' },
    });
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ id: first.json.id, duplicate: true });
    await routed(ing, String(first.json.id));
    expect(await jobCount(config)).toBe(1);
  });

  it('treats the same change from two hooks (different request ids) as one event', async () => {
    const { ing, config } = await ingress();
    const a = await send(ing.url, 'dc', dcRequest('repo:refs_changed', dcRefsChanged()));
    // The second hook's body differs in its bytes (here its date), not in its change: the fan-out sees the copy.
    const copy = { ...dcRefsChanged(), date: '2026-11-27T01:35:00+0000' };
    const b = await send(ing.url, 'dc', dcRequest('repo:refs_changed', copy));
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(await routed(ing, String(b.json.id))).toMatchObject({
      state: 'duplicate',
      duplicateOf: a.json.id,
      targets: [],
    });
    // A different change on the same branch is a new event.
    const c = await send(
      ing.url,
      'dc',
      dcRequest('repo:refs_changed', dcRefsChanged({ fromHash: HASH.b, toHash: HASH.c })),
    );
    expect(c.status).toBe(202);
    expect((await routed(ing, String(c.json.id))).state).toBe('routed');
    expect(await jobCount(config)).toBe(2);
  });

  it('takes only a repeat of the last transition of a ref for a copy: push, force-push back, push again', async () => {
    const { ing, config } = await ingress();
    // Each push at its own second (DC's `date`), so no two bodies are byte-identical (the replay guard's case).
    const push = (fromHash: string, toHash: string, second: number) =>
      dcRequest('repo:refs_changed', {
        ...dcRefsChanged({ fromHash, toHash }),
        date: `2026-11-27T01:34:${String(second).padStart(2, '0')}+0000`,
      });
    // Each is decided before the next is sent, as pushes seconds apart are.
    const pushed = async (from: string, to: string, second: number) => {
      const res = await send(ing.url, 'dc', push(from, to, second));
      expect(res.status).toBe(202);
      return { id: String(res.json.id), ...(await routed(ing, String(res.json.id))) };
    };
    expect((await pushed(HASH.a, HASH.b, 1)).state).toBe('routed');
    expect((await pushed(HASH.b, HASH.a, 2)).state).toBe('routed');
    const again = await pushed(HASH.a, HASH.b, 3);
    expect(again.state).toBe('routed');
    // The project hook's copy of that last push is still a copy.
    const copy = await pushed(HASH.a, HASH.b, 4);
    expect(copy).toMatchObject({ state: 'duplicate', duplicateOf: again.id });
    expect(await jobCount(config)).toBe(3);
  });

  it('keeps the content key off when contentWindow is 0', async () => {
    const { ing, config } = await ingress({
      ingress: { host: '127.0.0.1', port: 0, dedupe: { deliveryIdWindow: '1m', contentWindow: 0 } },
    });
    await send(ing.url, 'dc', dcRequest('repo:refs_changed', dcRefsChanged()));
    const later = { ...dcRefsChanged(), date: '2026-11-27T01:35:00+0000' };
    const b = await send(ing.url, 'dc', dcRequest('repo:refs_changed', later));
    expect(b.status).toBe(202);
    expect((await routed(ing, String(b.json.id))).state).toBe('routed');
    expect(await jobCount(config)).toBe(2);
  });

  it('stores one event when the same delivery arrives concurrently', async () => {
    const { ing, config } = await ingress();
    const req = cloudRequest('repo:push', cloudPush(), { requestId: 'race-1' });
    const answers = await Promise.all(Array.from({ length: 8 }, () => send(ing.url, 'cloud', req)));
    const accepted = answers.filter((a) => a.status === 202);
    expect(accepted).toHaveLength(1);
    for (const a of answers) expect([200, 202]).toContain(a.status);
    await routed(ing, String(accepted[0]!.json.id));
    expect(await jobCount(config)).toBe(1);
  });
});

describe('routing', () => {
  const targets = [
    { id: 'ci', url: 'http://127.0.0.1:9/a' },
    { id: 'rel', url: 'http://127.0.0.1:9/b' },
  ];

  it('matches source, event globs, repository globs and branch globs', async () => {
    const { ing } = await ingress({
      targets,
      routes: [
        {
          source: 'cloud',
          events: ['repo:push', 'pullrequest:*'],
          repos: ['acme/*'],
          branches: ['main'],
          targets: ['ci'],
        },
        {
          source: 'cloud',
          events: ['repo:push'],
          repos: ['ACME/**'],
          branches: ['release/*'],
          targets: ['rel'],
        },
      ],
    });
    const main = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref: 'main' })));
    expect((await routed(ing, String(main.json.id))).targets).toEqual(['ci']);
    const rel = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ ref: 'release/1.2', newHash: HASH.c })),
    );
    expect((await routed(ing, String(rel.json.id))).targets).toEqual(['rel']);
    const nested = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ ref: 'release/1.2/hot', newHash: HASH.merge })),
    );
    expect((await routed(ing, String(nested.json.id))).targets).toEqual([]);
    const other = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ repo: 'other/widgets', oldHash: HASH.c })),
    );
    expect((await routed(ing, String(other.json.id))).targets).toEqual([]);
    const pr = await send(
      ing.url,
      'cloud',
      cloudRequest('pullrequest:fulfilled', cloudPullRequest({ destination: 'main' })),
    );
    expect((await routed(ing, String(pr.json.id))).targets).toEqual(['ci']);
  });

  it('routes tag pushes and branch deletions by ref name', async () => {
    const { ing } = await ingress({
      targets,
      routes: [
        { source: 'cloud', events: ['repo:push'], branches: ['v*'], targets: ['rel'] },
        { source: 'dc', events: ['repo:refs_changed'], branches: ['feature/**'], targets: ['ci'] },
      ],
    });
    const tag = await send(
      ing.url,
      'cloud',
      cloudRequest('repo:push', cloudPush({ kind: 'tag', ref: 'v1.0.0', oldHash: null })),
    );
    expect((await routed(ing, String(tag.json.id))).targets).toEqual(['rel']);
    const stored = await ing.runtime.store.read(String(tag.json.id));
    expect(stored?.envelope.refs[0]).toMatchObject({
      kind: 'tag',
      name: 'v1.0.0',
      created: true,
      oldHash: null,
    });
    const del = await send(
      ing.url,
      'dc',
      dcRequest('repo:refs_changed', dcRefsChanged({ type: 'DELETE', ref: 'feature/x/y' })),
    );
    expect((await routed(ing, String(del.json.id))).targets).toEqual(['ci']);
    const delStored = await ing.runtime.store.read(String(del.json.id));
    expect(delStored?.envelope.refs[0]).toMatchObject({ deleted: true, newHash: null, oldHash: HASH.a });
  });

  it('accepts other known events with a minimal schema (Data Center comment)', async () => {
    const { ing } = await ingress();
    const res = await send(ing.url, 'dc', dcRequest('repo:comment:added', dcCommentAdded()));
    expect(res.status).toBe(202);
    expect((await routed(ing, String(res.json.id))).targets).toEqual(['ci']);
    const merged = await send(ing.url, 'dc', dcRequest('pr:merged', dcPrMerged()));
    expect(merged.status).toBe(202);
    await routed(ing, String(merged.json.id));
    const stored = await ing.runtime.store.read(String(merged.json.id));
    expect(stored?.envelope.pullRequest).toMatchObject({
      id: 3,
      mergeCommit: HASH.merge,
      destinationBranch: 'main',
    });
  });
});

describe('when Redis is unavailable', () => {
  it('answers 503 with Retry-After quickly, reports not ready, and recovers', async () => {
    const local = await startTestRedis();
    const config = testConfig(local.url);
    const logs = captureLogs();
    const ing = await startIngress(config, logs.log);
    try {
      expect((await fetch(`${ing.url}/readyz`)).status).toBe(200);
      await local.stop();
      const started = Date.now();
      const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()));
      expect(res.status).toBe(503);
      expect(res.json.error).toBe('QUEUE_UNAVAILABLE');
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      // Well under Bitbucket's 10 s timeout: the producer connection fails fast instead of queueing commands.
      expect(Date.now() - started).toBeLessThan(5000);
      expect((await fetch(`${ing.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
    } finally {
      await ing.close();
      await local.cleanup();
    }
  });

  it('answers 503 and leaves nothing behind when Redis refuses the write (all jobs or none)', async () => {
    const { ing, config } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'ci2', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [{ source: 'cloud', targets: ['ci', 'ci2'] }],
    });
    await db.inspect.config('SET', 'maxmemory', '1');
    try {
      const req = cloudRequest('repo:push', cloudPush(), { requestId: 'oom-1' });
      const res = await send(ing.url, 'cloud', req);
      expect(res.status).toBe(503);
      expect(await jobCount(config, 'ci')).toBe(0);
      expect(await jobCount(config, 'ci2')).toBe(0);
      expect(await db.inspect.keys(makeKeys(config).event('*'))).toHaveLength(0);
      await db.inspect.config('SET', 'maxmemory', '0');
      // Bitbucket's retry of the same delivery is then accepted, not taken for a duplicate.
      const retry = await send(ing.url, 'cloud', req);
      expect(retry.status).toBe(202);
      await routed(ing, String(retry.json.id));
      expect(await jobCount(config, 'ci')).toBe(1);
      expect(await jobCount(config, 'ci2')).toBe(1);
    } finally {
      await db.inspect.config('SET', 'maxmemory', '0');
    }
  });
});

describe('scripts sent by SHA', () => {
  it('recovers when Redis loses its script cache under a live connection', async () => {
    const { ing, config } = await ingress();
    expect((await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()))).status).toBe(202);
    await db.inspect.script('FLUSH');
    const req = cloudRequest('repo:push', cloudPush({ newHash: HASH.c }), { requestId: 'after-flush' });
    const first = await send(ing.url, 'cloud', req);
    // At most one 503 (the batch that found the scripts gone); Bitbucket's retry is then stored.
    const final = first.status === 202 ? first : await send(ing.url, 'cloud', req);
    expect([first.status, final.status]).toContain(202);
    expect(final.status).toBe(202);
    await routed(ing, String(final.json.id));
    expect(await jobCount(config)).toBe(2);
  });
});

describe('logging', () => {
  it('writes one line per request with source, event key, delivery id, outcome and duration, and no secrets', async () => {
    const { ing, logs } = await ingress();
    const req = cloudRequest('repo:push', cloudPush({ message: 'TOP-SECRET-COMMIT-MESSAGE\n' }), {
      requestId: 'log-1',
    });
    await send(ing.url, 'cloud', {
      ...req,
      headers: { ...req.headers, authorization: 'Basic dXNlcjpodW50ZXIy' },
    });
    await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush(), { secret: 'wrong-secret' }));
    const lines = logs.lines.filter((l) => l.msg === 'webhook');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      source: 'cloud',
      eventKey: 'repo:push',
      deliveryId: 'log-1',
      outcome: 'accepted',
      status: 202,
    });
    expect(typeof lines[0]!.ms).toBe('number');
    expect(lines[1]).toMatchObject({ outcome: 'SIGNATURE_INVALID', status: 401 });
    const raw = logs.raw();
    for (const secret of [
      SECRETS.cloud,
      SECRETS.cloudOld,
      req.headers['x-hub-signature']!.slice(7),
      'dXNlcjpodW50ZXIy',
      'TOP-SECRET-COMMIT-MESSAGE',
    ]) {
      expect(raw).not.toContain(secret);
    }
  });
});
