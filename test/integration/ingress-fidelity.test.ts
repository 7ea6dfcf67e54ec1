import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import type { Config } from '../../src/config/types.js';
import { makeKeys } from '../../src/queue/keys.js';
import { readBody } from '../fixtures/bitbucket/corpus/corpus.js';
import { dcRefsChanged, HASH } from '../fixtures/payloads.js';
import { dcRequest, send } from '../helpers/bitbucket.js';
import { SECRETS } from '../helpers/config.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useIngress } from '../helpers/ingress.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

const db = useTestRedis();

const ingress = useIngress(() => db.url);

/** A captured DC body signed as that server would sign it. */
function dcCaptured(eventKey: string, file: string) {
  const body = readBody({ file });
  const { headers } = dcRequest(eventKey, {});
  return { body, headers: { ...headers, 'x-hub-signature': sign(SECRETS.dc, body) } };
}

async function jobIds(config: Config, target = 'ci'): Promise<string[]> {
  return db.inspect.lrange(makeKeys(config).queueKey(target, 'wait'), 0, -1);
}

describe('every event family is stored and routed', () => {
  it('accepts a captured DC pr:reviewer:needs_work and queues its delivery', async () => {
    const { ing, config } = await ingress();
    const req = dcCaptured('pr:reviewer:needs_work', 'datacenter/gpw-pr-reviewer-needs-work.json');
    const res = await send(ing.url, 'dc', req);
    expect(res.status).toBe(202);
    expect((await routed(ing, String(res.json.id))).targets).toEqual(['ci']);
    expect(await jobIds(config)).toEqual([`${res.json.id}.ci`]);
    const stored = await ing.runtime.store.read(String(res.json.id));
    expect(stored?.body.equals(req.body)).toBe(true);
  });

  it('routes a captured DC repo:modified (repository only in old/new) by its new name and by `*`', async () => {
    const { ing } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'gopher', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [
        { source: 'dc', repos: ['*'], targets: ['ci'] },
        { source: 'dc', repos: ['gopher/webhook-test'], targets: ['gopher'] },
      ],
    });
    const res = await send(ing.url, 'dc', dcCaptured('repo:modified', 'datacenter/gpw-repo-modified.json'));
    expect(res.status).toBe(202);
    expect((await routed(ing, String(res.json.id))).targets).toEqual(['ci', 'gopher']);
    const stored = await ing.runtime.store.read(String(res.json.id));
    expect(stored?.envelope.repository).toBe('gopher/webhook-test');
  });

  it('routes a project event by `*` and a mirror synchronisation by its branches', async () => {
    const { ing } = await ingress({
      targets: [
        { id: 'ci', url: 'http://127.0.0.1:9/a' },
        { id: 'release', url: 'http://127.0.0.1:9/b' },
      ],
      routes: [
        { source: 'dc', events: ['project:*'], targets: ['ci'] },
        { source: 'dc', events: ['mirror:*'], branches: ['release/*'], targets: ['release'] },
      ],
    });
    const project = await send(
      ing.url,
      'dc',
      dcRequest('project:modified', {
        eventKey: 'project:modified',
        date: '2024-05-02T10:00:00+0000',
        old: { key: 'OLD', id: 1, name: 'Old', public: false, type: 'NORMAL' },
        new: { key: 'NEW', id: 1, name: 'New', public: false, type: 'NORMAL' },
      }),
    );
    expect(project.status).toBe(202);
    expect((await routed(ing, String(project.json.id))).targets).toEqual(['ci']);
    const mirror = await send(
      ing.url,
      'dc',
      dcRequest('mirror:repo_synchronized', {
        ...dcRefsChanged({ ref: 'release/2' }),
        eventKey: 'mirror:repo_synchronized',
        mirrorServer: { id: 'B0F2-4F5D', name: 'Mirror' },
        syncType: 'INCREMENTAL',
      }),
    );
    expect(mirror.status).toBe(202);
    expect((await routed(ing, String(mirror.json.id))).targets).toEqual(['release']);
  });
});

describe('dedupe never drops a new transition; replays are copies', () => {
  const relays: TestRelay[] = [];
  const servers: TargetServer[] = [];
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  async function relay() {
    const server = await startTargetServer();
    servers.push(server);
    const r = await startRelay(db.url, [target('ci', `${server.url}/hook`)]);
    relays.push(r);
    return { r, server };
  }

  it('a two-ref push whose second ref repeats its last move delivers the first ref’s new move', async () => {
    const { r, server } = await relay();
    const first = await send(r.ing.url, 'dc', dcRequest('repo:refs_changed', dcRefsChanged()));
    expect(first.status).toBe(202);
    expect((await routed(r.ing, String(first.json.id))).repeatedRefs).toBeUndefined();
    // Another hook's push: `dev` moves anew, `main` repeats A→B.
    const both = dcRefsChanged({ ref: 'dev', fromHash: HASH.c, toHash: HASH.merge });
    both.changes.push(dcRefsChanged().changes[0]!);
    const req = dcRequest('repo:refs_changed', both);
    const second = await send(r.ing.url, 'dc', req);
    expect(second.status).toBe(202);
    expect((await routed(r.ing, String(second.json.id))).repeatedRefs).toEqual(['main']);
    await r.settled(String(second.json.id), 'ci', ['delivered']);
    // Two events to one target may arrive in either order: workers run jobs concurrently.
    const got = await server.waitFor(2);
    expect(got.filter((hit) => hit.body.equals(req.body))).toHaveLength(1);
    const stored = await r.ing.runtime.store.read(String(second.json.id));
    expect(stored?.envelope.repeatedRefs).toEqual(['main']);
    // Every ref repeating its last move is a copy.
    const again = await send(r.ing.url, 'dc', dcRequest('repo:refs_changed', both));
    expect(again).toMatchObject({ status: 200, json: { duplicate: true, id: second.json.id } });
  });

  it('an old signed body resent with a new delivery id is a 200 duplicate, delivered once', async () => {
    const { r, server } = await relay();
    // main moves A→B, B→C; then the captured A→B body comes back under a fresh X-Request-Id.
    const ab = dcRequest('repo:refs_changed', dcRefsChanged());
    const abRes = await send(r.ing.url, 'dc', ab);
    const bc = await send(
      r.ing.url,
      'dc',
      dcRequest('repo:refs_changed', dcRefsChanged({ fromHash: HASH.b, toHash: HASH.c })),
    );
    expect([abRes.status, bc.status]).toEqual([202, 202]);
    const replay = await send(r.ing.url, 'dc', {
      body: ab.body,
      headers: { ...ab.headers, 'x-request-id': randomUUID() },
    });
    expect(replay).toMatchObject({ status: 200, json: { duplicate: true, id: abRes.json.id } });
    await r.settled(String(bc.json.id), 'ci', ['delivered']);
    await r.settled(String(abRes.json.id), 'ci', ['delivered']);
    expect(server.received).toHaveLength(2);
    expect(server.received.filter((x) => x.body.equals(ab.body))).toHaveLength(1);
  });
});

describe('no payload causes a 5xx', () => {
  it('keeps a signed body nested 100k levels deep in a field the relay reads, quarantined for its depth', async () => {
    const { ing, config } = await ingress();
    const flat = JSON.stringify(dcRefsChanged());
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const body = Buffer.from(`${flat.slice(0, -1)},"toCommit":{"id":"abc","message":${deep}}}`);
    const { headers } = dcRequest('repo:refs_changed', {});
    const res = await send(ing.url, 'dc', {
      body,
      headers: { ...headers, 'x-hub-signature': sign(SECRETS.dc, body) },
    });
    expect(res.status).toBe(202);
    expect(await routed(ing, String(res.json.id))).toMatchObject({
      state: 'quarantined',
      quarantine: 'body nests deeper than 128 levels',
      targets: [],
    });
    expect(await db.inspect.zcard(makeKeys(config).eventIndex)).toBe(1);
    expect(await jobIds(config)).toEqual([]);
  });
});
