import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import type { Runtime } from '../../src/runtime.js';
import { cloudPush, dcRefsChanged } from '../fixtures/payloads.js';
import { startAdmin } from '../helpers/admin.js';
import { cloudRequest, dcRequest, send } from '../helpers/bitbucket.js';
import { runCli } from '../helpers/cli.js';
import { SECRETS, testConfig } from '../helpers/config.js';
import { AUTH, FakeBitbucket } from '../helpers/fake-bitbucket.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

// Every step runs a real process on a shared two-core machine: generous per-test time.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const NEW_SECRET = 'cloud-hook-secret-NEW-3333';
const ADMIN_TOKEN = 'admin-token-for-bitbucket-status-0123456789';
const RELAY = 'https://relay.example.com/hooks/cloud';
const RELAY_DC = 'https://relay.example.com/hooks/dc';

const db = useTestRedis();
let fake: FakeBitbucket;
let dir: string;
let caFile: string;
let relayUrl: string;
let adminUrl: string;
let runtime: Runtime;
let closeRelay: () => Promise<void>;
const files: Record<string, string> = {};

/** The CLI's config: same sources and secrets as the running relay (so `hooks test` signs what it accepts). */
function writeConfig(name: string, cloudSecrets: string[], dcSecrets = [SECRETS.dc]): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      sources: [
        { id: 'cloud', platform: 'cloud', secrets: cloudSecrets },
        { id: 'dc', platform: 'datacenter', secrets: dcSecrets },
      ],
      targets: [{ id: 'ci', url: 'http://127.0.0.1:9/a' }],
      routes: [{ source: 'cloud', targets: ['ci'] }],
    }),
  );
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-bb-'));
  // A self-signed certificate for the fake API: the CLI trusts it through NODE_EXTRA_CA_CERTS only.
  const key = join(dir, 'key.pem');
  caFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      caFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  fake = new FakeBitbucket({ key: readFileSync(key), cert: readFileSync(caFile) });
  await fake.start();
  files.config = writeConfig('hookrelay.yaml', [SECRETS.cloud]);
  files.rotated = writeConfig('rotated.yaml', [NEW_SECRET, SECRETS.cloud], [NEW_SECRET, SECRETS.dc]);
  files.dev = writeConfig('dev.yaml', ['dev-cloud-secret'], ['dev-dc-secret']);
  files.wrongSecret = writeConfig('wrong.yaml', ['not-the-relays-secret-4444']);
  // `${BB_SECRET_OLD:-}` left empty: one real secret only.
  files.emptyOld = writeConfig('empty-old.yaml', [SECRETS.cloud, '']);

  const relayConfig = testConfig(db.url, {
    admin: { tokens: [{ name: 'ops', token: ADMIN_TOKEN, role: 'viewer' }] },
  });
  const ingress = await startIngress(relayConfig, captureLogs().log);
  const admin = await startAdmin(ingress.runtime);
  runtime = ingress.runtime;
  relayUrl = ingress.url;
  adminUrl = admin.url;
  closeRelay = async () => {
    await admin.close();
    await ingress.close();
  };
});
afterAll(async () => {
  await closeRelay?.();
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

const cloudEnv = { BITBUCKET_EMAIL: AUTH.email, BITBUCKET_API_TOKEN: AUTH.apiToken };
const accessEnv = { BITBUCKET_ACCESS_TOKEN: AUTH.accessToken };
const dcEnv = { BITBUCKET_DC_TOKEN: AUTH.dcToken };
/** The CLI with the fake's CA trusted and nothing else from the test's environment. */
const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
  runCli(args, { NODE_EXTRA_CA_CERTS: caFile, ...env }, 60_000, input);

interface ArgOptions {
  config?: string;
  url?: string;
  /** false: no --api-url (the Cloud default, never reached in these tests). */
  api?: boolean;
}
/** A `hookrelay bitbucket …` command line; config, relay URL, repository and API default to the test's own. */
function bb(source: 'cloud' | 'dc', command: string[], o: ArgOptions, extra: string[]): string[] {
  const isCloud = source === 'cloud';
  const level = isCloud ? '--workspace' : '--project';
  return [
    'bitbucket',
    ...command,
    '--config',
    o.config ?? files.config!,
    '--source',
    source,
    '--url',
    o.url ?? (isCloud ? RELAY : RELAY_DC),
    ...(o.api === false ? [] : ['--api-url', fake.httpsUrl]),
    ...(extra.some((e) => e === level || e === '--repo')
      ? []
      : ['--repo', isCloud ? 'acme/widgets' : 'ACME/widgets']),
    ...extra,
  ];
}
const cloud = (command: string[], ...extra: string[]) => bb('cloud', command, {}, extra);
const dc = (command: string[], ...extra: string[]) => bb('dc', command, {}, extra);
const basic = `Basic ${Buffer.from(`${AUTH.email}:${AUTH.apiToken}`).toString('base64')}`;

describe('bitbucket register (Cloud)', () => {
  it('creates with a user API token as Basic auth with the email, then updates the same hook, keeping its name', async () => {
    fake.seed('cloud:acme/widgets', {
      url: 'https://ci.example.com/a',
      events: ['repo:push'],
      active: true,
      name: 'ci a',
    });
    fake.seed('cloud:acme/widgets', {
      url: 'https://ci.example.com/b',
      events: ['repo:push'],
      active: true,
      name: 'ci b',
    });
    const first = await cli(cloud(['register']), cloudEnv);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^created webhook \{[0-9a-f-]+\} on acme\/widgets/);
    expect(first.stdout).not.toContain(SECRETS.cloud);
    expect(fake.writes()).toEqual([
      {
        method: 'POST',
        path: '/2.0/repositories/acme/widgets/hooks',
        auth: basic,
        body: {
          description: 'hookrelay (cloud)',
          url: RELAY,
          active: true,
          secret: SECRETS.cloud,
          events: ['repo:push', 'pullrequest:created', 'pullrequest:updated', 'pullrequest:fulfilled'],
        },
      },
    ]);
    // The admin renames the hook in Bitbucket; a second register must find it on page 2 and keep the name.
    const ours = fake.list('cloud:acme/widgets')[2]!;
    ours.name = 'Relay for widgets (named by the admin)';
    fake.requests = [];
    const again = await cli(cloud(['register'], '--events', 'repo:push'), cloudEnv);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^updated webhook/);
    expect(
      fake.requests.filter((r) => r.method === 'GET' && r.path.includes('/repositories/')).map((r) => r.path),
    ).toEqual([
      '/2.0/repositories/acme/widgets/hooks?pagelen=100',
      '/2.0/repositories/acme/widgets/hooks?pagelen=2&page=2',
    ]);
    expect(fake.writes()).toEqual([
      expect.objectContaining({
        method: 'PUT',
        path: `/2.0/repositories/acme/widgets/hooks/${encodeURIComponent(ours.id)}`,
      }),
    ]);
    expect(fake.list('cloud:acme/widgets').filter((h) => h.url === RELAY)).toEqual([
      expect.objectContaining({
        name: 'Relay for widgets (named by the admin)',
        events: ['repo:push'],
        secret: SECRETS.cloud,
      }),
    ]);
  });

  it('sends a repository access token as Bearer; the workspace it cannot read is a note, not a failure', async () => {
    const res = await cli(cloud(['register']), accessEnv);
    expect(res.code).toBe(0);
    expect(fake.writes()[0]!.auth).toBe(`Bearer ${AUTH.accessToken}`);
    expect(res.stderr).toContain('could not check the workspace hooks of acme (HTTP 403)');
  });

  it('a wrong credential kind gets a message naming the right one', async () => {
    // A user API token sent as Bearer: Bitbucket's real 401 text, plus what to use instead.
    const asBearer = await cli(cloud(['register']), { BITBUCKET_ACCESS_TOKEN: AUTH.apiToken });
    expect(asBearer.code).toBe(1);
    expect(asBearer.stderr).toContain('Bitbucket answered 401');
    expect(asBearer.stderr).toContain('Token is invalid, expired, or not supported for this endpoint.');
    expect(asBearer.stderr).toContain('BITBUCKET_API_TOKEN with BITBUCKET_EMAIL');
    expect(asBearer.stderr).not.toContain(AUTH.apiToken);
    // A wrong email with a real token: the message points at the email.
    const wrongEmail = await cli(cloud(['register']), {
      ...cloudEnv,
      BITBUCKET_EMAIL: 'someone@else.example',
    });
    expect(wrongEmail.code).toBe(1);
    expect(wrongEmail.stderr).toContain("Atlassian account's email");
    // Before any request: a token without an email, the retired variables, nothing at all.
    const noEmail = await cli(cloud(['register']), { BITBUCKET_API_TOKEN: AUTH.apiToken });
    expect(noEmail.code).toBe(2);
    expect(noEmail.stderr).toContain('BITBUCKET_API_TOKEN needs BITBUCKET_EMAIL');
    const retired = await cli(cloud(['register']), {
      BITBUCKET_USERNAME: 'ops-bot',
      BITBUCKET_APP_PASSWORD: 'x',
    });
    expect(retired.code).toBe(2);
    expect(retired.stderr).toContain('no longer read');
    expect(retired.stderr).toContain('BITBUCKET_EMAIL + BITBUCKET_API_TOKEN');
    expect(retired.stderr).not.toMatch(/app password/i);
    const none = await cli(cloud(['register']));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('BITBUCKET_ACCESS_TOKEN');
    // Data Center: its 401 body, and what Data Center takes.
    const dcWrong = await cli(dc(['register']), { BITBUCKET_DC_TOKEN: 'expired' });
    expect(dcWrong.code).toBe(1);
    expect(dcWrong.stderr).toContain('Authentication failed. Please check your credentials and try again.');
    expect(dcWrong.stderr).toContain('HTTP access token');
    expect(fake.writes()).toEqual([]);
  });

  it('--dry-run prints the request with the secret masked and changes nothing, with or without credentials', async () => {
    const res = await cli(cloud(['register'], '--dry-run'), cloudEnv);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`POST ${fake.httpsUrl}/2.0/repositories/acme/widgets/hooks`);
    expect(res.stdout).toContain('"secret": "********"');
    expect(res.stdout).not.toContain(SECRETS.cloud);
    const json = await cli(cloud(['register'], '--dry-run', '--json'));
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      dryRun: true,
      checked: false,
      request: { method: 'POST', body: { secret: '********' } },
    });
    expect(fake.writes()).toEqual([]);
  });

  it('refuses, before any request, an http API URL, a URL of another source, unknown events and the development secret', async () => {
    const http = await cli(cloud(['register'], '--api-url', fake.httpUrl), cloudEnv);
    expect(http.code).toBe(2);
    expect(http.stderr).toContain('in clear');
    expect(http.stderr).toContain('--insecure');
    const otherSource = await cli(bb('cloud', ['register'], { url: RELAY_DC }, []), cloudEnv);
    expect(otherSource.code).toBe(2);
    expect(otherSource.stderr).toContain('source "dc", not "cloud"');
    const bogus = await cli(cloud(['register'], '--events', 'repo:push,pullrequest:bogus'), cloudEnv);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toContain('unknown Bitbucket Cloud event pullrequest:bogus');
    const dcKeyOnCloud = await cli(cloud(['register'], '--events', 'repo:refs_changed'), cloudEnv);
    expect(dcKeyOnCloud.code).toBe(2);
    const devSecret = await cli(bb('cloud', ['register'], { config: files.dev! }, []), cloudEnv);
    expect(devSecret.code).toBe(2);
    expect(devSecret.stderr).toContain("example config's development secret");
    const sslOnCloud = await cli(cloud(['register'], '--no-ssl-verification'), cloudEnv);
    expect(sslOnCloud.code).toBe(2);
    expect(fake.requests).toEqual([]);
    // --insecure lets a test API be plain http.
    const insecure = await cli(cloud(['register'], '--api-url', fake.httpUrl, '--insecure'), cloudEnv);
    expect(insecure.code).toBe(0);
    expect(fake.list('cloud:acme/widgets')).toHaveLength(1);
  });

  it('takes the secret from standard input when it is one the relay accepts', async () => {
    const stdin = await cli(cloud(['register'], '--secret-stdin'), cloudEnv, `${SECRETS.cloud}\n`);
    expect(stdin.code).toBe(0);
    expect(fake.list('cloud:acme/widgets')[0]!.secret).toBe(SECRETS.cloud);
    const foreign = await cli(
      cloud(['register'], '--secret-stdin'),
      cloudEnv,
      'a-secret-the-relay-does-not-know',
    );
    expect(foreign.code).toBe(2);
    expect(foreign.stderr).toContain('would refuse every delivery');
    expect(foreign.stderr).not.toContain('a-secret-the-relay-does-not-know');
  });

  it('registers a workspace hook, and warns when a repository hook would double it', async () => {
    const ws = await cli(cloud(['register'], '--workspace', 'acme'), cloudEnv);
    expect(ws.code).toBe(0);
    expect(fake.writes()[0]).toMatchObject({ method: 'POST', path: '/2.0/workspaces/acme/hooks' });
    const again = await cli(cloud(['register'], '--workspace', 'acme'), cloudEnv);
    expect(again.stdout).toMatch(/^updated/);
    expect(fake.list('cloud:acme')).toHaveLength(1);
    const repo = await cli(cloud(['register']), cloudEnv);
    expect(repo.code).toBe(0);
    expect(repo.stderr).toContain('warning: workspace acme already has hook');
    expect(repo.stderr).toContain('would arrive twice');
  });
});

describe('bitbucket register (Data Center)', () => {
  it('needs --api-url; creates with configuration.secret and sslVerificationRequired, finds it on a later page', async () => {
    const noApi = await cli(
      dc(['register']).filter((a, i, all) => a !== '--api-url' && all[i - 1] !== '--api-url'),
      dcEnv,
    );
    expect(noApi.code).toBe(2);
    for (const n of [1, 2, 3])
      fake.seed('datacenter:ACME/widgets', {
        url: `https://ci.example.com/${n}`,
        events: ['repo:refs_changed'],
        active: true,
        name: `ci ${n}`,
      });
    const first = await cli(dc(['register'], '--events', 'repo:refs_changed,pr:reviewer:needs_work'), dcEnv);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(fake.writes()[0]).toEqual({
      method: 'POST',
      path: '/rest/api/latest/projects/ACME/repos/widgets/webhooks',
      auth: `Bearer ${AUTH.dcToken}`,
      body: {
        name: 'hookrelay (dc)',
        url: RELAY_DC,
        active: true,
        events: ['repo:refs_changed', 'pr:reviewer:needs_work'],
        configuration: { secret: SECRETS.dc },
        sslVerificationRequired: true,
      },
    });
    const second = await cli(dc(['register'], '--no-ssl-verification'), dcEnv);
    expect(second.code).toBe(0);
    const ours = fake.list('datacenter:ACME/widgets')[3]!;
    expect(
      fake.requests
        .filter((r) => r.method === 'GET' && r.path.includes('/repos/'))
        .map((r) => r.path)
        .slice(-2),
    ).toEqual([
      '/rest/api/latest/projects/ACME/repos/widgets/webhooks?start=0&limit=100',
      '/rest/api/latest/projects/ACME/repos/widgets/webhooks?start=2&limit=100',
    ]);
    expect(fake.writes()[1]).toMatchObject({
      method: 'PUT',
      path: `/rest/api/latest/projects/ACME/repos/widgets/webhooks/${ours.id}`,
    });
    expect(ours).toMatchObject({
      sslVerificationRequired: false,
      events: ['repo:refs_changed', 'pr:reviewer:needs_work'],
      secret: SECRETS.dc,
    });
    expect(fake.list('datacenter:ACME/widgets').filter((h) => h.url === RELAY_DC)).toHaveLength(1);
  });

  it('registers a project hook', async () => {
    const res = await cli(dc(['register'], '--project', 'ACME'), dcEnv);
    expect(res.code).toBe(0);
    expect(fake.writes()[0]).toMatchObject({
      method: 'POST',
      path: '/rest/api/latest/projects/ACME/webhooks',
    });
    const ws = await cli(dc(['register'], '--workspace', 'ACME'), dcEnv);
    expect(ws.code).toBe(2);
  });
});

describe('bitbucket rotate-secret', () => {
  it('reads the config from HOOKRELAY_CONFIG without --config, like every command; with neither it says how', async () => {
    const args = cloud(['rotate-secret']);
    args.splice(args.indexOf('--config'), 2);
    const fromEnv = await cli(args, { HOOKRELAY_CONFIG: files.rotated! });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stdout).toContain(`rotate-secret --config ${files.rotated}`);
    const none = await cli(args);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('set HOOKRELAY_CONFIG');
    expect(fake.requests).toEqual([]);
  });

  it('step 1 needs no credentials; --apply needs them even for --dry-run; --apply changes only the secret', async () => {
    const step1 = await cli(cloud(['rotate-secret']));
    expect(step1.code).toBe(0);
    expect(step1.stdout).toMatch(/^ {2}[0-9a-f]{64}$/m);
    expect(step1.stdout).toContain('BB_SECRET_OLD=');
    expect(step1.stdout).toContain('--repo acme/widgets');
    expect(fake.requests).toEqual([]);

    const hook = fake.seed('cloud:acme/widgets', {
      url: RELAY,
      events: ['repo:push', 'pullrequest:fulfilled'],
      active: false,
      name: 'Named by the admin',
      secret: SECRETS.cloud,
    });
    const early = await cli(cloud(['rotate-secret'], '--apply'), cloudEnv);
    expect(early.code).toBe(2); // one secret in the config: applying would reject webhooks in flight
    const emptyOld = await cli(
      bb('cloud', ['rotate-secret'], { config: files.emptyOld! }, ['--apply']),
      cloudEnv,
    );
    expect(emptyOld.code).toBe(2);
    expect(emptyOld.stderr).toContain('lists one secret only');
    const rotated = (extra: string[]) =>
      bb('cloud', ['rotate-secret'], { config: files.rotated! }, ['--apply', ...extra]);
    const dryNoCreds = await cli(rotated(['--dry-run']));
    expect(dryNoCreds.code).toBe(2);
    expect(dryNoCreds.stderr).toContain('no Bitbucket credentials');
    const dry = await cli(rotated(['--dry-run']), cloudEnv);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`PUT ${fake.httpsUrl}/2.0/repositories/acme/widgets/hooks/`);
    expect(dry.stdout).not.toContain(NEW_SECRET);
    expect(fake.writes()).toEqual([]);

    const apply = await cli(rotated([]), cloudEnv);
    expect(apply.code).toBe(0);
    expect(fake.writes()).toEqual([
      expect.objectContaining({
        method: 'PUT',
        body: {
          description: 'Named by the admin',
          url: RELAY,
          active: false,
          events: ['repo:push', 'pullrequest:fulfilled'],
          secret: NEW_SECRET,
        },
      }),
    ]);
    expect(fake.list('cloud:acme/widgets')).toEqual([{ ...hook, secret: NEW_SECRET }]);
  });

  it('Data Center: --apply keeps name, events, active and the SSL setting (PUT replaces the whole hook)', async () => {
    fake.seed('datacenter:ACME/widgets', {
      url: RELAY_DC,
      events: ['pr:merged'],
      active: false,
      name: 'Named in Bitbucket',
      configuration: { secret: SECRETS.dc },
      secret: SECRETS.dc,
      sslVerificationRequired: false,
    });
    const res = await cli(bb('dc', ['rotate-secret'], { config: files.rotated! }, ['--apply']), dcEnv);
    expect(res.code).toBe(0);
    expect(fake.list('datacenter:ACME/widgets')[0]).toMatchObject({
      name: 'Named in Bitbucket',
      events: ['pr:merged'],
      active: false,
      sslVerificationRequired: false,
      secret: NEW_SECRET,
    });
  });

  it('--apply without an existing hook fails (register first)', async () => {
    const res = await cli(bb('cloud', ['rotate-secret'], { config: files.rotated! }, ['--apply']), cloudEnv);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('register');
  });
});

describe('bitbucket hooks list / remove', () => {
  it('lists the relay hooks here and a level up, removes by URL, and a second remove is a no-op', async () => {
    fake.seed('cloud:acme/widgets', {
      url: 'https://ci.example.com/x',
      events: ['repo:push'],
      active: true,
      name: 'other',
    });
    const repoHook = fake.seed('cloud:acme/widgets', {
      url: RELAY,
      events: ['repo:push'],
      active: true,
      name: 'relay',
    });
    const wsHook = fake.seed('cloud:acme', {
      url: RELAY,
      events: ['repo:push'],
      active: true,
      name: 'relay ws',
    });
    const list = await cli(cloud(['hooks', 'list'], '--json'), cloudEnv);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).hooks).toEqual([
      expect.objectContaining({ level: 'repository', scope: 'acme/widgets', id: repoHook.id, name: 'relay' }),
      expect.objectContaining({ level: 'workspace', scope: 'workspace acme', id: wsHook.id }),
    ]);
    const human = await cli(cloud(['hooks', 'list']), cloudEnv);
    expect(human.stdout).toContain('relay ws');
    expect(human.stderr).toContain('every event arrives 2 times');

    const dry = await cli(cloud(['hooks', 'remove'], '--dry-run'), cloudEnv);
    expect(dry.code).toBe(0);
    expect(fake.writes()).toEqual([]);
    const removed = await cli(cloud(['hooks', 'remove'], '--json'), cloudEnv);
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ removed: true, id: repoHook.id });
    expect(fake.writes()).toEqual([
      expect.objectContaining({
        method: 'DELETE',
        path: `/2.0/repositories/acme/widgets/hooks/${encodeURIComponent(repoHook.id)}`,
      }),
    ]);
    expect(fake.list('cloud:acme/widgets').map((h) => h.name)).toEqual(['other']);
    const again = await cli(cloud(['hooks', 'remove']), cloudEnv);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('nothing to remove');
    const dcHook = fake.seed('datacenter:ACME', {
      url: RELAY_DC,
      events: ['repo:refs_changed'],
      active: true,
      name: 'p',
    });
    const dcRemove = await cli(dc(['hooks', 'remove'], '--project', 'ACME'), dcEnv);
    expect(dcRemove.code).toBe(0);
    expect(fake.writes().at(-1)).toMatchObject({
      method: 'DELETE',
      path: `/rest/api/latest/projects/ACME/webhooks/${dcHook.id}`,
    });
  });
});

describe('bitbucket hooks test / status against a running relay', () => {
  const eventCount = () => runtime.redis.zcard(runtime.keys.eventIndex);

  it('Cloud: a signed hookrelay:test event reaches the relay and is not stored; a wrong secret fails', async () => {
    const url = `${relayUrl}/hooks/cloud`;
    const before = await eventCount();
    const args = (config: string) => bb('cloud', ['hooks', 'test'], { config, url, api: false }, []);
    const ok = await cli(args(files.config!));
    expect(ok.stderr).toContain('credentials');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('ok: a signed test event reached source cloud');
    expect(await eventCount()).toBe(before);
    const wrong = await cli(args(files.wrongSecret!));
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toContain('HTTP 401');
  });

  it("Data Center: Bitbucket's test endpoint posts to the relay and reports its answer", async () => {
    const url = `${relayUrl}/hooks/dc`;
    const hook = fake.seed('datacenter:ACME/widgets', {
      url,
      events: ['repo:refs_changed'],
      active: true,
      name: 'relay',
      secret: SECRETS.dc,
    });
    const res = await cli(bb('dc', ['hooks', 'test'], { url }, []), dcEnv);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('ok: Bitbucket reached');
    expect(fake.requests.at(-1)!.path).toBe(
      `/rest/api/latest/projects/ACME/repos/widgets/webhooks/test?webhookId=${hook.id}&url=${encodeURIComponent(url)}&sslVerificationRequired=true`,
    );
    expect(fake.testDeliveries).toEqual([{ url, status: 200 }]);
  });

  it("status shows Bitbucket's record beside what the relay stored, and says when the relay saw nothing", async () => {
    const url = `${relayUrl}/hooks/dc`;
    const latest = {
      id: 9,
      event: 'repo:refs_changed',
      start: Date.now() - 60_000,
      finish: Date.now() - 59_000,
      result: { outcome: 'SUCCESS', description: '202' },
    };
    fake.seed('datacenter:ACME/widgets', {
      url,
      events: ['repo:refs_changed'],
      active: true,
      name: 'relay',
      latest,
      summary: { successes: 3, failures: 0, errors: 0 },
    });
    fake.seed('datacenter:ACME/gadgets', {
      url,
      events: ['repo:refs_changed'],
      active: true,
      name: 'relay',
      latest,
      summary: { successes: 2, failures: 1, errors: 0 },
    });
    const push = await send(
      relayUrl,
      'dc',
      dcRequest('repo:refs_changed', dcRefsChanged({ project: 'ACME', slug: 'widgets' })),
    );
    expect(push.status).toBe(202);
    const args = (repo: string) =>
      bb('dc', ['hooks', 'status'], { url }, ['--repo', repo, '--admin-url', adminUrl]);
    const env = { ...dcEnv, HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN };
    const widgets = await cli([...args('ACME/widgets'), '--json'], env);
    expect(widgets.code).toBe(0);
    const json = JSON.parse(widgets.stdout);
    expect(json.bitbucket.summary).toEqual({ successes: 3, failures: 0, errors: 0 });
    expect(json.bitbucket.latest).toMatchObject({ result: { outcome: 'SUCCESS' } });
    expect(json.relay).toMatchObject({ events: 1 });
    const gadgets = await cli(args('ACME/gadgets'), env);
    expect(gadgets.code).toBe(0);
    expect(gadgets.stdout).toContain('Bitbucket: 2 succeeded, 1 failed');
    expect(gadgets.stdout).toContain('relay: 0 events');
    expect(gadgets.stdout).toContain('never stored');
    const gadgetsHook = fake.list('datacenter:ACME/gadgets')[0]!.id;
    for (const path of ['latest', 'statistics', 'statistics/summary'])
      expect(fake.requests.map((r) => r.path)).toContain(
        `/rest/api/latest/projects/ACME/repos/gadgets/webhooks/${gadgetsHook}/${path}`,
      );
  });

  it('Cloud status counts the events that came with this hook’s X-Hook-UUID', async () => {
    const url = `${relayUrl}/hooks/cloud`;
    const hook = fake.seed('cloud:acme/widgets', {
      id: '{d3f1b2a4-5c6e-4f70-8192-a3b4c5d6e7f8}',
      url,
      events: ['repo:push'],
      active: true,
      name: 'relay',
    });
    // cloudRequest sends this hook's UUID; a second push comes from another hook.
    expect((await send(relayUrl, 'cloud', cloudRequest('repo:push', cloudPush()))).status).toBe(202);
    const other = cloudRequest('repo:push', cloudPush({ ref: 'other-branch' }));
    other.headers['x-hook-uuid'] = '{00000000-0000-4000-8000-000000000000}';
    expect((await send(relayUrl, 'cloud', other)).status).toBe(202);
    const res = await cli(bb('cloud', ['hooks', 'status'], { url }, ['--admin-url', adminUrl, '--json']), {
      ...cloudEnv,
      HOOKRELAY_ADMIN_TOKEN: ADMIN_TOKEN,
    });
    expect(res.code).toBe(0);
    const json = JSON.parse(res.stdout);
    expect(json.hook.id).toBe(hook.id);
    expect(json.bitbucket).toBeNull();
    expect(json.relay.events).toBe(1);
  });
});
