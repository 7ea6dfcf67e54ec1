import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';

// Every step runs a real process on a shared two-core machine: generous per-test time.
vi.setConfig({ testTimeout: 120_000 });

const CLOUD_SECRET = 'cloud-hook-secret-1111';
const DC_SECRET = 'dc-hook-secret-2222';
const NEW_SECRET = 'cloud-hook-secret-NEW-3333';
const TOKEN = 'bb-cloud-api-token';
const DC_TOKEN = 'bb-dc-http-access-token';
const RELAY_URL = 'https://relay.example.com/hooks/cloud';

interface Recorded {
  method: string;
  path: string;
  auth?: string;
  body?: Record<string, unknown>;
}
interface Hook {
  id: string;
  url: string;
  events: string[];
  active: boolean;
  secret?: string;
  name?: string;
}

/**
 * A fake of both Bitbucket REST APIs: it keeps hooks per repository, answers 401 to any other credential and
 * 400 to a body that is not the shape Bitbucket documents, and pages its lists so the client must follow them.
 */
class FakeBitbucket {
  server: Server;
  requests: Recorded[] = [];
  hooks = new Map<string, Hook[]>();
  url = '';
  private seq = 0;
  constructor() {
    this.server = createServer(async (req, res) => {
      const body = await read(req);
      const u = new URL(req.url!, 'http://x');
      this.requests.push({
        method: req.method!,
        path: u.pathname + u.search,
        auth: req.headers.authorization,
        ...(body ? { body } : {}),
      });
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      const okAuth = [
        `Bearer ${TOKEN}`,
        `Basic ${Buffer.from(`ops-bot:app-pass-xyz`).toString('base64')}`,
        `Bearer ${DC_TOKEN}`,
      ];
      if (!okAuth.includes(req.headers.authorization ?? ''))
        return send(401, { type: 'error', error: { message: 'Unauthorized' } });
      const cloud = /^\/2\.0\/repositories\/([^/]+)\/([^/]+)\/hooks(?:\/([^/]+))?$/.exec(u.pathname);
      const dc = /^\/rest\/api\/1\.0\/projects\/([^/]+)\/repos\/([^/]+)\/webhooks(?:\/([^/]+))?$/.exec(
        u.pathname,
      );
      const m = cloud ?? dc;
      if (!m) return send(404, { error: { message: 'no such resource' } });
      if (cloud && req.headers.authorization === `Bearer ${DC_TOKEN}`)
        return send(401, { error: { message: 'wrong token' } });
      const repo = `${m[1]}/${m[2]}`;
      const list = this.hooks.get(repo) ?? [];
      this.hooks.set(repo, list);
      const id = m[3] ? decodeURIComponent(m[3]) : undefined;
      if (req.method === 'GET' && !id) {
        if (cloud) {
          const page = Number(u.searchParams.get('page') ?? '1');
          const values = list.slice((page - 1) * 2, page * 2).map((h) => ({
            uuid: h.id,
            url: h.url,
            events: h.events,
            active: h.active,
            description: h.name,
            secret_set: !!h.secret,
          }));
          return send(200, {
            values,
            pagelen: 2,
            ...(page * 2 < list.length
              ? { next: `https://api.bitbucket.org${u.pathname}?page=${page + 1}` }
              : {}),
          });
        }
        const start = Number(u.searchParams.get('start') ?? '0');
        const values = list
          .slice(start, start + 2)
          .map((h) => ({ id: Number(h.id), url: h.url, events: h.events, active: h.active, name: h.name }));
        const last = start + 2 >= list.length;
        return send(200, {
          values,
          size: values.length,
          isLastPage: last,
          ...(last ? {} : { nextPageStart: start + 2 }),
        });
      }
      const problem = body && (cloud ? cloudProblem(body) : dcProblem(body));
      if (problem) return send(400, { error: { message: problem } });
      const b = body!;
      const fields = {
        url: String(b.url),
        events: b.events as string[],
        active: b.active as boolean,
        secret: cloud ? (b.secret as string) : (b.configuration as { secret: string }).secret,
        name: String(cloud ? b.description : b.name),
      };
      if (req.method === 'POST' && !id) {
        const hook = { id: cloud ? `{hook-${++this.seq}}` : String(++this.seq), ...fields };
        list.push(hook);
        return send(201, cloud ? { uuid: hook.id, url: hook.url } : { id: Number(hook.id), url: hook.url });
      }
      if (req.method === 'PUT' && id) {
        const hook = list.find((h) => h.id === id);
        if (!hook) return send(404, { error: { message: 'no such hook' } });
        Object.assign(hook, fields);
        return send(200, cloud ? { uuid: hook.id } : { id: Number(hook.id) });
      }
      return send(405, { error: { message: 'method not allowed' } });
    });
  }
  writes() {
    return this.requests.filter((r) => r.method !== 'GET');
  }
}

function cloudProblem(b: Record<string, unknown>): string | null {
  const keys = Object.keys(b).sort().join(',');
  if (keys !== 'active,description,events,secret,url') return `unexpected fields ${keys}`;
  if (!Array.isArray(b.events) || b.events.length === 0) return 'events required';
  return null;
}
function dcProblem(b: Record<string, unknown>): string | null {
  const keys = Object.keys(b).sort().join(',');
  if (keys !== 'active,configuration,events,name,url') return `unexpected fields ${keys}`;
  if (typeof (b.configuration as { secret?: unknown })?.secret !== 'string')
    return 'configuration.secret required';
  return null;
}

async function read(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}

let fake: FakeBitbucket;
let dir: string;
const cfg = (name: string, cloudSecrets: string[]) => {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      sources: [
        { id: 'cloud', platform: 'cloud', secrets: cloudSecrets },
        { id: 'dc', platform: 'datacenter', secrets: [DC_SECRET] },
      ],
      targets: [{ id: 'ci', url: 'http://127.0.0.1:9/a' }],
      routes: [{ source: 'cloud', targets: ['ci'] }],
    }),
  );
  return file;
};
let config: string;
let rotated: string;

beforeAll(async () => {
  fake = new FakeBitbucket();
  await new Promise<void>((res) => fake.server.listen(0, '127.0.0.1', res));
  fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-bb-'));
  config = cfg('hookrelay.yaml', [CLOUD_SECRET]);
  rotated = cfg('rotated.yaml', [NEW_SECRET, CLOUD_SECRET]);
});
afterAll(async () => {
  await new Promise((res) => fake.server.close(res));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  fake.requests = [];
  fake.hooks.clear();
});

const cloudArgs = (...extra: string[]) => [
  'bitbucket',
  'register',
  '--config',
  config,
  '--source',
  'cloud',
  '--repo',
  'acme/widgets',
  '--url',
  RELAY_URL,
  '--api-url',
  fake.url,
  ...extra,
];

describe('hookrelay bitbucket register (Cloud)', () => {
  it('creates the hook with the source secret, then updates the same hook instead of adding another', async () => {
    fake.hooks.set('acme/widgets', [
      { id: '{other-1}', url: 'https://ci.example.com/a', events: ['repo:push'], active: true },
      { id: '{other-2}', url: 'https://ci.example.com/b', events: ['repo:push'], active: true },
    ]);
    const first = await runCli(cloudArgs(), { BITBUCKET_TOKEN: TOKEN });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^created webhook \{hook-\d+\} on acme\/widgets/);
    const [post] = fake.writes();
    expect(post).toMatchObject({
      method: 'POST',
      path: '/2.0/repositories/acme/widgets/hooks',
      auth: `Bearer ${TOKEN}`,
      body: {
        description: 'hookrelay (cloud)',
        url: RELAY_URL,
        active: true,
        secret: CLOUD_SECRET,
        events: ['repo:push', 'pullrequest:created', 'pullrequest:updated', 'pullrequest:fulfilled'],
      },
    });
    expect(first.stdout).not.toContain(CLOUD_SECRET);

    fake.requests = [];
    const again = await runCli(cloudArgs('--events', 'repo:push'), { BITBUCKET_TOKEN: TOKEN });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^updated webhook/);
    // The paged list was followed to the third hook (page 2).
    expect(fake.requests.filter((r) => r.method === 'GET').map((r) => r.path)).toEqual([
      '/2.0/repositories/acme/widgets/hooks?pagelen=100',
      '/2.0/repositories/acme/widgets/hooks?page=2',
    ]);
    const created = fake.hooks.get('acme/widgets')![2]!.id; // `{hook-n}`: braces, URL-encoded on the way
    expect(fake.writes()).toEqual([
      expect.objectContaining({
        method: 'PUT',
        path: `/2.0/repositories/acme/widgets/hooks/${encodeURIComponent(created)}`,
      }),
    ]);
    const ours = fake.hooks.get('acme/widgets')!.filter((h) => h.url === RELAY_URL);
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatchObject({ events: ['repo:push'], secret: CLOUD_SECRET });
  });

  it('uses username + app password as Basic auth', async () => {
    const res = await runCli(cloudArgs(), {
      BITBUCKET_USERNAME: 'ops-bot',
      BITBUCKET_APP_PASSWORD: 'app-pass-xyz',
    });
    expect(res.code).toBe(0);
    expect(fake.writes()[0]!.auth).toBe(`Basic ${Buffer.from('ops-bot:app-pass-xyz').toString('base64')}`);
  });

  it('--dry-run prints the request with the secret masked and changes nothing', async () => {
    const res = await runCli(cloudArgs('--dry-run'), { BITBUCKET_TOKEN: TOKEN });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`POST ${fake.url}/2.0/repositories/acme/widgets/hooks`);
    expect(res.stdout).toContain('"secret": "********"');
    expect(res.stdout).not.toContain(CLOUD_SECRET);
    expect(fake.writes()).toEqual([]);
    const json = await runCli([...cloudArgs('--dry-run', '--json')], {});
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      dryRun: true,
      checked: false,
      request: { method: 'POST', body: { secret: '********' } },
    });
  });

  it('exit 2 without credentials or with a bad repo, exit 1 when Bitbucket refuses the credentials', async () => {
    const none = await runCli(cloudArgs(), {});
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('BITBUCKET_TOKEN');
    const badRepo = await runCli(
      [
        'bitbucket',
        'register',
        '--config',
        config,
        '--source',
        'cloud',
        '--repo',
        'widgets',
        '--url',
        RELAY_URL,
      ],
      { BITBUCKET_TOKEN: TOKEN },
    );
    expect(badRepo.code).toBe(2);
    const unknownSource = await runCli(
      ['bitbucket', 'register', '--config', config, '--source', 'nope', '--repo', 'a/b', '--url', RELAY_URL],
      { BITBUCKET_TOKEN: TOKEN },
    );
    expect(unknownSource.code).toBe(2);
    const refused = await runCli(cloudArgs(), { BITBUCKET_TOKEN: 'wrong' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Bitbucket answered 401');
    expect(fake.writes()).toEqual([]);
  });
});

describe('hookrelay bitbucket register (Data Center)', () => {
  const dcArgs = (...extra: string[]) => [
    'bitbucket',
    'register',
    '--config',
    config,
    '--source',
    'dc',
    '--repo',
    'ACME/widgets',
    '--url',
    'https://relay.example.com/hooks/dc',
    ...extra,
  ];
  it('needs --api-url, creates with configuration.secret, and updates by URL', async () => {
    expect((await runCli(dcArgs(), { BITBUCKET_DC_TOKEN: DC_TOKEN })).code).toBe(2);
    const first = await runCli(dcArgs('--api-url', `${fake.url}/`), { BITBUCKET_DC_TOKEN: DC_TOKEN });
    expect(first.code).toBe(0);
    expect(fake.writes()[0]).toMatchObject({
      method: 'POST',
      path: '/rest/api/1.0/projects/ACME/repos/widgets/webhooks',
      auth: `Bearer ${DC_TOKEN}`,
      body: {
        name: 'hookrelay (dc)',
        url: 'https://relay.example.com/hooks/dc',
        active: true,
        events: ['repo:refs_changed', 'pr:opened', 'pr:from_ref_updated', 'pr:modified', 'pr:merged'],
        configuration: { secret: DC_SECRET },
      },
    });
    const second = await runCli(dcArgs('--api-url', fake.url), { BITBUCKET_DC_TOKEN: DC_TOKEN });
    expect(second.code).toBe(0);
    const created = fake.hooks.get('ACME/widgets')![0]!.id;
    expect(fake.writes()[1]).toMatchObject({
      method: 'PUT',
      path: `/rest/api/1.0/projects/ACME/repos/widgets/webhooks/${created}`,
    });
    expect(fake.hooks.get('ACME/widgets')).toHaveLength(1);
  });
});

describe('hookrelay bitbucket rotate-secret', () => {
  const rotateArgs = (file: string, ...extra: string[]) => [
    'bitbucket',
    'rotate-secret',
    '--config',
    file,
    '--source',
    'cloud',
    '--repo',
    'acme/widgets',
    '--url',
    RELAY_URL,
    '--api-url',
    fake.url,
    ...extra,
  ];
  it('step 1 prints a new secret and the config change; step 2 puts the new secret on the hook', async () => {
    const registered = await runCli(cloudArgs('--events', 'repo:push,pullrequest:fulfilled'), {
      BITBUCKET_TOKEN: TOKEN,
    });
    expect(registered.code).toBe(0);
    fake.requests = [];

    const step1 = await runCli(rotateArgs(config), { BITBUCKET_TOKEN: TOKEN });
    expect(step1.code).toBe(0);
    expect(step1.stdout).toMatch(/^ {2}[0-9a-f]{64}$/m);
    expect(step1.stdout).toContain('BB_SECRET_OLD=');
    expect(step1.stdout).toContain('--apply');
    expect(fake.requests).toEqual([]); // nothing touched Bitbucket yet

    // The config still lists only the old secret: refusing keeps webhooks from being rejected.
    const early = await runCli(rotateArgs(config, '--apply'), { BITBUCKET_TOKEN: TOKEN });
    expect(early.code).toBe(2);
    expect(fake.writes()).toEqual([]);

    const dry = await runCli(rotateArgs(rotated, '--apply', '--dry-run'), { BITBUCKET_TOKEN: TOKEN });
    expect(dry.code).toBe(0);
    expect(dry.stdout).not.toContain(NEW_SECRET);
    expect(fake.writes()).toEqual([]);

    const step2 = await runCli(rotateArgs(rotated, '--apply'), { BITBUCKET_TOKEN: TOKEN });
    expect(step2.code).toBe(0);
    expect(fake.writes()).toEqual([expect.objectContaining({ method: 'PUT' })]);
    const hook = fake.hooks.get('acme/widgets')![0]!;
    // New secret on, events as they were.
    expect(hook).toMatchObject({
      secret: NEW_SECRET,
      events: ['repo:push', 'pullrequest:fulfilled'],
      url: RELAY_URL,
    });
  });

  it('--apply without an existing hook fails (register first)', async () => {
    const res = await runCli(rotateArgs(rotated, '--apply'), { BITBUCKET_TOKEN: TOKEN });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('register');
  });
});
