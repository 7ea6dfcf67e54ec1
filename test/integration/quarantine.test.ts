// biome-ignore-all lint/suspicious/noExplicitAny: JSON answers are read loosely; the assertions check their shape
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cloudPullRequest, dcRefsChanged } from '../fixtures/payloads.js';
import { api, startAdmin, waitFor } from '../helpers/admin.js';
import { cloudRequest, dcRequest, send } from '../helpers/bitbucket.js';
import { runCli } from '../helpers/cli.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed } from '../helpers/routed.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

// The CLI steps run the built CLI (`npm run build` first) as real processes on a shared machine.
vi.setConfig({ testTimeout: 120_000 });

const OPERATOR = 'q-operator-token-0123456789abcdef';
const VIEWER = 'q-viewer-token-0123456789abcdef';

const db = useTestRedis();

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** Ingress, real delivery workers, a real target and the admin API over one Redis. */
async function setup(routes?: Record<string, unknown>[]) {
  const server: TargetServer = await startTargetServer();
  closers.push(() => server.close());
  const relay: TestRelay = await startRelay(db.url, [target('ci', `${server.url}/hook`)], {
    admin: {
      tokens: [
        { name: 'olga', token: OPERATOR, role: 'operator' },
        { name: 'vic', token: VIEWER, role: 'viewer' },
      ],
    },
    ...(routes ? { routes } : {}),
  });
  closers.push(() => relay.close());
  const admin = await startAdmin(relay.ing.runtime);
  closers.push(() => admin.close());
  const metric = async (name: string, labels: Record<string, string>) => {
    const m = await relay.ing.runtime.metrics.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
    return v?.value ?? 0;
  };
  const audits = (action: string) =>
    relay.logs.lines.filter((l) => l.audit === true && l.action === action) as Record<string, any>[];
  return { server, relay, admin, metric, audits };
}

describe('a well-formed event key the relay does not know', () => {
  it('is stored, routed by events ["*"], counted and logged, never refused', async () => {
    const { relay, server, metric } = await setup([
      { source: 'dc', events: ['*'], targets: ['ci'] },
      { source: 'cloud', events: ['repo:push'], targets: ['ci'] },
    ]);
    const req = dcRequest('pr:reviewer:brand_new', { eventKey: 'pr:reviewer:brand_new', date: 'now' });
    const res = await send(relay.ing.url, 'dc', req);
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({ duplicate: false, state: 'received' });
    expect(await routed(relay.ing, String(res.json.id))).toMatchObject({ state: 'routed', targets: ['ci'] });
    await relay.settled(String(res.json.id), 'ci', ['delivered']);
    expect((await server.waitFor(1))[0]!.body.equals(req.body)).toBe(true);
    expect(
      await metric('hookrelay_unknown_event_keys_total', { source: 'dc', key: 'pr:reviewer:brand_new' }),
    ).toBe(1);
    expect(relay.logs.lines.find((l) => l.msg === 'fan-out' && l.unknownKey === true)).toMatchObject({
      eventKey: 'pr:reviewer:brand_new',
      outcome: 'routed',
    });
    // Only a route naming it (or `*`) takes it.
    const cloud = await send(relay.ing.url, 'cloud', cloudRequest('repo:brand_new', { repository: null }));
    expect(cloud.status).toBe(202);
    expect((await routed(relay.ing, String(cloud.json.id))).targets).toEqual([]);
  });
});

describe('a signed body of unexpected field types', () => {
  it('is quarantined (202, never 5xx, not delivered), listed, released by an operator and delivered', async () => {
    const { relay, server, admin, metric, audits } = await setup();
    // DC's toCommit.message as a number, a Cloud PR title as an object: each signed, each authentic.
    const push = dcRefsChanged() as Record<string, any>;
    push.toCommit = { id: push.changes[0].toHash, message: 123 };
    const pushReq = dcRequest('repo:refs_changed', push);
    const pr = cloudPullRequest() as Record<string, any>;
    pr.pullrequest.title = { nested: [[['x']]] };
    const prReq = cloudRequest('pullrequest:created', pr);
    const a = await send(relay.ing.url, 'dc', pushReq);
    const b = await send(relay.ing.url, 'cloud', prReq);
    for (const r of [a, b]) {
      expect(r.status).toBe(202);
      expect(r.json).toMatchObject({ duplicate: false, state: 'received' });
      expect(await routed(relay.ing, String(r.json.id))).toMatchObject({ state: 'quarantined', targets: [] });
    }
    expect(await metric('hookrelay_ingress_quarantined_total', { source: 'dc' })).toBe(1);
    expect(relay.logs.lines.find((l) => l.outcome === 'quarantined')?.quarantine).toBe(
      'toCommit.message: must be a string',
    );
    // A Bitbucket retry of it is a copy, not a second quarantined event.
    expect((await send(relay.ing.url, 'dc', pushReq)).status).toBe(200);

    const list = await api<any>(admin.url, 'GET', '/api/quarantined', { token: VIEWER });
    expect(list.status).toBe(200);
    expect(list.json.total).toBe(2);
    expect(list.json.quarantined.map((q: any) => q.id)).toEqual([b.json.id, a.json.id]);
    expect(list.json.quarantined[1]).toMatchObject({
      source: 'dc',
      eventKey: 'repo:refs_changed',
      repository: 'ACME/widgets',
      reason: 'toCommit.message: must be a string',
      expired: false,
    });
    const page = await api<any>(admin.url, 'GET', '/api/quarantined?limit=1&cursor=1', { token: VIEWER });
    expect(page.json.quarantined.map((q: any) => q.id)).toEqual([a.json.id]);
    const bySource = await api<any>(admin.url, 'GET', '/api/quarantined?source=cloud', { token: VIEWER });
    expect(bySource.json.quarantined.map((q: any) => q.id)).toEqual([b.json.id]);
    // The event filters apply; another delivery state matches none; an unknown parameter is refused.
    const byKey = await api<any>(admin.url, 'GET', '/api/quarantined?eventKey=pullrequest:*', {
      token: VIEWER,
    });
    expect(byKey.json.quarantined.map((q: any) => q.id)).toEqual([b.json.id]);
    const dead = await api<any>(admin.url, 'GET', '/api/quarantined?state=dead', { token: VIEWER });
    expect(dead.json.quarantined).toEqual([]);
    const unknown = await api<any>(admin.url, 'GET', '/api/quarantined?colour=red', { token: VIEWER });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toBe('UNKNOWN_FILTER');
    expect(server.received).toHaveLength(0);

    const denied = await api(admin.url, 'POST', `/api/quarantined/${a.json.id}/release`, { token: VIEWER });
    expect(denied.status).toBe(403);
    const released = await api<any>(admin.url, 'POST', `/api/quarantined/${a.json.id}/release`, {
      token: OPERATOR,
    });
    expect(released.json).toMatchObject({ released: 1, id: a.json.id, targets: ['ci'] });
    await relay.settled(String(a.json.id), 'ci', ['delivered']);
    expect((await server.waitFor(1))[0]!.body.equals(pushReq.body)).toBe(true);
    expect(audits('quarantined.release')[0]).toMatchObject({ ids: [a.json.id], count: 1 });
    const again = await api<any>(admin.url, 'POST', `/api/quarantined/${a.json.id}/release`, {
      token: OPERATOR,
    });
    expect(again.status).toBe(404);

    const after = await api<any>(admin.url, 'GET', '/api/quarantined', { token: VIEWER });
    expect(after.json.quarantined.map((q: any) => q.id)).toEqual([b.json.id]);
    expect(server.received).toHaveLength(1);

    // The events list knows the state too: only the one still held back, marked; the released one is not.
    const held = await api<any>(admin.url, 'GET', '/api/events?state=quarantined', { token: VIEWER });
    expect(held.status).toBe(200);
    expect(held.json.events.map((e: any) => e.id)).toEqual([b.json.id]);
    expect(held.json.events[0].quarantined).toBe(true);
    const shown = await api<any>(admin.url, 'GET', `/api/events/${b.json.id}`, { token: VIEWER });
    expect(shown.json.timeline.find((e: any) => e.kind === 'routing')).toMatchObject({
      title: expect.stringContaining('Quarantined'),
      details: expect.arrayContaining([['reason', 'pullrequest.title: must be a string']]),
    });
  });

  it('the CLI lists, discards (audited, never delivered) and releases quarantined events', async () => {
    const { relay, server, admin, audits } = await setup();
    const push = dcRefsChanged() as Record<string, any>;
    push.changes[0].ref.displayId = 42;
    const res = await send(relay.ing.url, 'dc', dcRequest('repo:refs_changed', push));
    expect((await routed(relay.ing, String(res.json.id))).state).toBe('quarantined');
    const id = String(res.json.id);
    const cli = (args: string[], token = OPERATOR) =>
      runCli(['quarantined', ...args, '--admin-url', admin.url, '--token', token]);

    const table = await cli(['list'], VIEWER);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^RECEIVED\s+ID\s+SOURCE\s+EVENT\s+REPOSITORY\s+REASON/);
    expect(table.stdout).toContain(id);
    expect(table.stdout).toMatch(/changes\.(0\.)?ref\.displayId: must be (a )?string/);
    const json = JSON.parse((await cli(['list', '--json'], VIEWER)).stdout);
    expect(json).toMatchObject({ total: 1, quarantined: [{ id, source: 'dc' }] });

    const discarded = await cli(['discard', id]);
    expect(discarded.code).toBe(0);
    expect(discarded.stdout).toContain('1 discarded');
    await waitFor(() => audits('quarantined.discard').length === 1);
    expect(audits('quarantined.discard')[0]).toMatchObject({ ids: [id], count: 1 });
    expect(JSON.parse((await cli(['list', '--json'], VIEWER)).stdout).total).toBe(0);
    const gone = await cli(['release', id]);
    expect(gone.code).toBe(1);
    expect(gone.stdout).toContain('NOT_FOUND');
    // The event is kept (readable, with its outcome) but never delivered.
    expect(await db.inspect.hget(relay.ing.runtime.keys.event(id), 'qd')).toMatch(/^discarded /);
    expect(server.received).toHaveLength(0);

    const other = dcRefsChanged({ ref: 'dev' }) as Record<string, any>;
    other.actor = 'not an object';
    const second = await send(relay.ing.url, 'dc', dcRequest('repo:refs_changed', other));
    expect((await routed(relay.ing, String(second.json.id))).state).toBe('quarantined');
    const release = await cli(['release', String(second.json.id)]);
    expect(release.code).toBe(0);
    expect(release.stdout).toContain('1 released');
    await relay.settled(String(second.json.id), 'ci', ['delivered']);
    expect(server.received).toHaveLength(1);
  });
});
