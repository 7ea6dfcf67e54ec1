import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import type { Config } from '../../src/config/types.js';
import { cloudPush } from '../fixtures/payloads.js';
import { scriptedWorker, waitFor } from '../helpers/admin.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { runCli, startCliServer } from '../helpers/cli.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { startTestRedis } from '../helpers/redis.js';

// Every step runs a real process on a shared two-core machine: generous per-test time.
vi.setConfig({ testTimeout: 120_000 });

const OPERATOR = 'cli-operator-token-0123456789';
const VIEWER = 'cli-viewer-token-0123456789ab';

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let dir: string;
let config: Config;
let ing: TestIngress;
let admin: Awaited<ReturnType<typeof startCliServer>>;
const ids: string[] = [];

const asOperator = (args: string[]) =>
  runCli([...args, '--admin-url', admin.url], { HOOKRELAY_ADMIN_TOKEN: OPERATOR });
const asViewer = (args: string[]) => runCli([...args, '--admin-url', admin.url, '--token', VIEWER]);
const jobState = (id: string, t = 'ci') => ing.runtime.queues.get(t)!.getJobState(`${id}.${t}`);

beforeAll(async () => {
  redis = await startTestRedis();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-cli-'));
  const tree = {
    redis: { url: redis.url, prefix: `cli${process.pid}` },
    ingress: { host: '127.0.0.1', port: 0 },
    admin: {
      host: '127.0.0.1',
      port: 0,
      tokens: [
        { name: 'ops', token: OPERATOR, role: 'operator' },
        { name: 'viewer', token: VIEWER, role: 'viewer' },
      ],
    },
    sources: [{ id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud] }],
    targets: [
      { id: 'ci', url: 'http://127.0.0.1:9/a' },
      { id: 'ci2', url: 'http://127.0.0.1:9/b' },
    ],
    routes: [{ source: 'cloud', targets: ['ci', 'ci2'] }],
    log: { level: 'info' },
  };
  writeFileSync(join(dir, 'hookrelay.yaml'), stringify(tree));
  config = testConfig(redis.url, tree);
  ing = await startIngress(config, captureLogs().log);
  // The admin role as its own process, the way it is deployed.
  admin = await startCliServer(['admin', '--config', join(dir, 'hookrelay.yaml')], 'admin listening');

  // Three events; every ci delivery dies (503 twice, then a timeout), ci2 gets one suppressed.
  const outcomes = [
    { status: 503, excerpt: 'Jenkins restarting' },
    { status: 503 },
    { error: 'timeout after 10000 ms' },
  ];
  // Events are sent one after the other and each is queued before its 202, so the order in which a worker
  // first sees them is the send order (the ids are not known yet when the worker runs).
  const arrivalOrder = () => {
    const seen: string[] = [];
    return (e: string) => {
      if (!seen.includes(e)) seen.push(e);
      return seen.indexOf(e);
    };
  };
  const nthCi = arrivalOrder();
  const nthCi2 = arrivalOrder();
  const w1 = scriptedWorker(ing.runtime, 'ci', (job) => outcomes[nthCi(job.data.eventId)] ?? { status: 500 });
  const w2 = scriptedWorker(ing.runtime, 'ci2', (job) =>
    nthCi2(job.data.eventId) === 0 ? { suppress: 'bot actor jenkins' } : { ok: true },
  );
  for (let i = 0; i < 3; i++) {
    const res = await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush({ ref: `feature-${i}` })));
    ids.push(String(res.json.id));
  }
  await waitFor(async () => (await ing.runtime.queues.get('ci')!.getFailedCount()) === 3);
  await waitFor(async () => (await ing.runtime.queues.get('ci2')!.getCompletedCount()) === 3);
  await Promise.all([w1.close(), w2.close()]);
}, 90_000);

afterAll(async () => {
  await admin?.stop();
  await ing?.close();
  await redis?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('hookrelay events', () => {
  it('events show: a readable life of the event, and --json', async () => {
    const human = await asViewer(['events', 'show', ids[0]!]);
    expect(human.code).toBe(0);
    // The same timeline as the console's event page.
    expect(human.stdout).toContain(`event ${ids[0]}`);
    expect(human.stdout).toContain('Received from Bitbucket');
    expect(human.stdout).toContain('repository: acme/widgets');
    expect(human.stdout).toContain('header x-hub-signature: •••• (masked)');
    expect(human.stdout).toContain('Routed to ci, ci2');
    expect(human.stdout).toMatch(/Attempt 1 of \d+ to ci: 503/);
    expect(human.stdout).toMatch(/ci: dead\n.*\n.*\n\s+reason: status 503/);
    expect(human.stdout).toContain('Loop guard suppressed the delivery to ci2: bot actor jenkins');
    expect(human.stdout).toContain('response excerpt: Jenkins restarting');
    expect(human.stdout).not.toContain(SECRETS.cloud);
    const json = await asViewer(['events', 'show', ids[0]!, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: ids[0], eventKey: 'repo:push' });
    const missing = await asViewer(['events', 'show', '00000000-0000-0000-0000-000000000000']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('NOT_FOUND');
  });

  it('events list: newest first, filters, pages with --cursor and --all', async () => {
    const table = await asViewer(['events', 'list']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RECEIVED\s+ID\s+SOURCE\s+EVENT\s+REPOSITORY\s+REFS\s+TARGETS$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/)[1])).toEqual([...ids].reverse());
    const page = JSON.parse((await asViewer(['events', 'list', '--limit', '2', '--json'])).stdout);
    expect(page.events).toHaveLength(2);
    const rest = JSON.parse(
      (await asViewer(['events', 'list', '--limit', '2', '--cursor', page.nextCursor, '--json'])).stdout,
    );
    expect(rest.events.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    const all = JSON.parse((await asViewer(['events', 'list', '--limit', '1', '--all', '--json'])).stdout);
    expect(all.events).toHaveLength(3);
    const filtered = JSON.parse(
      (await asViewer(['events', 'list', '--target', 'ci2', '--state', 'suppressed', '--json'])).stdout,
    );
    expect(filtered.events.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    const branch = JSON.parse(
      (await asViewer(['events', 'list', '--branch', 'feature-1', '--commit', '9fdd7b', '--json'])).stdout,
    );
    expect(branch.events.map((e: { id: string }) => e.id)).toEqual([ids[1]]);
    const bad = await asViewer(['events', 'list', '--state', 'nonsense']);
    expect(bad.code).toBe(2);
    const badTarget = await asViewer(['events', 'list', '--target', 'nope']);
    expect(badTarget.code).toBe(2);
    expect(badTarget.stderr).toContain('unknown target');
  });
});

describe('hookrelay dlq', () => {
  it('dlq list and show: table, filters by status class, --json', async () => {
    const list = await asViewer(['dlq', 'list']);
    expect(list.code).toBe(0);
    for (const id of ids) expect(list.stdout).toContain(`${id}.ci`);
    expect(list.stdout).toContain('3 of 3');
    const fivexx = JSON.parse((await asViewer(['dlq', 'list', '--status', '5xx', '--json'])).stdout);
    expect(fivexx.deadLetters.map((d: { id: string }) => d.id).sort()).toEqual(
      [`${ids[0]}.ci`, `${ids[1]}.ci`].sort(),
    );
    const timeout = JSON.parse((await asViewer(['dlq', 'list', '--status', 'timeout', '--json'])).stdout);
    expect(timeout.deadLetters.map((d: { id: string }) => d.id)).toEqual([`${ids[2]}.ci`]);
    const show = await asViewer(['dlq', 'show', `${ids[0]}.ci`]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`idempotency key ${ids[0]}.ci`);
    expect(show.stdout).toMatch(/1\s+\S+ \S+\s+5\s+503\s+bitbucket/);
  });

  it('exit codes: 2 for usage (no filter, no token, unknown option), 1 for failures (401, 403, 404)', async () => {
    const noFilter = await asOperator(['dlq', 'replay']);
    expect(noFilter.code).toBe(2);
    expect(noFilter.stderr).toContain('filter is required');
    const noToken = await runCli(['dlq', 'list', '--admin-url', admin.url]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('HOOKRELAY_ADMIN_TOKEN');
    expect((await asViewer(['dlq', 'list', '--bogus'])).code).toBe(2);
    const badToken = await runCli([
      'dlq',
      'list',
      '--admin-url',
      admin.url,
      '--token',
      'wrong-wrong-wrong-wrong',
    ]);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('UNAUTHORIZED');
    const viewerReplays = await asViewer(['dlq', 'replay', `${ids[0]}.ci`]);
    expect(viewerReplays.code).toBe(1);
    expect(viewerReplays.stdout).toContain('FORBIDDEN');
    const unreachable = await runCli([
      'dlq',
      'list',
      '--admin-url',
      'http://127.0.0.1:9',
      '--token',
      OPERATOR,
    ]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach the admin API');
  });

  it('dlq replay: --dry-run counts, ids replay (job back to wait, same key), --target replays the rest', async () => {
    const dry = await asOperator(['dlq', 'replay', '--target', 'ci', '--since', '1h', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, matched: 3, wouldBe: 3 });
    expect(await jobState(ids[0]!)).toBe('failed');

    const one = await asOperator(['dlq', 'replay', `${ids[0]}.ci`, `${ids[0]}.nope`]);
    expect(one.code).toBe(1); // one of two failed
    expect(one.stdout).toContain('1 replayed, 1 failed');
    expect(await jobState(ids[0]!)).toBe('waiting');
    const job = await ing.runtime.queues.get('ci')!.getJob(`${ids[0]}.ci`);
    expect(job!.data).toEqual({
      eventId: ids[0],
      targetId: 'ci',
      idempotencyKey: `${ids[0]}.ci`,
      trigger: 'replay',
    });

    const rest = await asOperator(['dlq', 'replay', '--target', 'ci', '--status', '5xx', '--fresh']);
    expect(rest.code).toBe(0);
    expect(rest.stdout.trim()).toBe('1 replayed');
    const fresh = await ing.runtime.queues.get('ci')!.getJob(`${ids[1]}.ci`);
    expect(fresh!.data.idempotencyKey).toMatch(new RegExp(`^${ids[1]}\\.ci\\.[0-9a-f-]{36}$`));
    expect(await jobState(ids[2]!)).toBe('failed');
  });

  it('suppressed list and release', async () => {
    const list = await asViewer(['suppressed', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`${ids[0]}.ci2`);
    expect(list.stdout).toContain('bot actor jenkins');
    expect((await asOperator(['suppressed', 'release'])).code).toBe(2);
    const dry = await asOperator(['suppressed', 'release', '--reason', 'bot', '--dry-run']);
    expect(dry.stdout).toContain('dry run: 1 would be released');
    const rel = await asOperator(['suppressed', 'release', `${ids[0]}.ci2`, '--json']);
    expect(rel.code).toBe(0);
    expect(JSON.parse(rel.stdout)).toMatchObject({ released: 1 });
    const job = await ing.runtime.queues.get('ci2')!.getJob(`${ids[0]}.ci2.release-1`);
    expect(job!.data).toEqual({
      eventId: ids[0],
      targetId: 'ci2',
      idempotencyKey: `${ids[0]}.ci2`,
      trigger: 'release',
    });
  });

  it('dlq purge: filter required, then gone; the audit line names the identity', async () => {
    expect((await asOperator(['dlq', 'purge'])).code).toBe(2);
    const purge = await asOperator(['dlq', 'purge', '--status', 'timeout']);
    expect(purge.code).toBe(0);
    expect(purge.stdout.trim()).toBe('1 purged');
    expect(await ing.runtime.queues.get('ci')!.getJob(`${ids[2]}.ci`)).toBeUndefined();
    await waitFor(() => admin.output().includes('"action":"dead-letters.purge"'));
    const line = admin
      .output()
      .split('\n')
      .find((l) => l.includes('"action":"dead-letters.purge"'))!;
    expect(JSON.parse(line)).toMatchObject({
      audit: true,
      identity: 'ops',
      actorRole: 'operator',
      count: 1,
      filter: { status: 'timeout' },
    });
  });
});

describe('hookrelay dlq replay --wait', () => {
  it('replays, shows progress and ends with the outcome: delivered / failed again', async () => {
    // What the earlier tests replayed is waiting: let it die again, then replay it with --wait.
    const dying = scriptedWorker(ing.runtime, 'ci', () => ({ status: 502, excerpt: 'still down' }));
    await waitFor(async () => (await ing.runtime.queues.get('ci')!.getFailedCount()) === 2);
    await dying.close();
    const worker = scriptedWorker(ing.runtime, 'ci', (job) =>
      job.data.eventId === ids[0] ? { ok: true } : { status: 502, excerpt: 'still down' },
    );
    try {
      const run = await asOperator(['dlq', 'replay', '--target', 'ci', '--wait']);
      expect(run.code).toBe(1); // one failed again
      expect(run.stdout).toContain('2 replayed');
      expect(run.stderr).toMatch(/\d delivered, \d failed again, \d waiting \(of 2\)/);
      expect(run.stdout).toContain('outcome: 1 delivered, 1 failed again');
      expect(run.stdout).toContain(`${ids[1]}.ci: status 502`);
    } finally {
      await worker.close();
    }
  });
});

describe('human output of names from payloads', () => {
  it('shows control characters escaped: no terminal escape sequence reaches the screen', async () => {
    // A signed push whose repository and ref names carry ESC sequences (retitle, colour, clear screen), a C1
    // CSI (U+009B) and a newline that would forge a line of output.
    const res = await send(
      ing.url,
      'cloud',
      cloudRequest(
        'repo:push',
        cloudPush({
          repo: 'acme/\u001b]0;pwned\u0007evil',
          ref: 'main\u001b[2J\u009b31m\nrepository  forged',
        }),
      ),
    );
    expect(res.status).toBe(202);
    const id = String(res.json.id);
    const show = await asViewer(['events', 'show', id]);
    expect(show.code).toBe(0);
    const list = await asViewer(['events', 'list']);
    expect(list.code).toBe(0);
    for (const out of [show.stdout, list.stdout]) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the assertion is that none are printed
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect(out).toContain('acme/\\u001b]0;pwned\\u0007evil');
      expect(out).toContain('main\\u001b[2J\\u009b31m\\u000arepository  forged');
    }
    expect(show.stdout.split('\n').filter((l) => /^\s*repository[: ]/.test(l)).length).toBe(1);
  });
});
