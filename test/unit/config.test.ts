import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildConfig, loadConfig, parseConfigText, pointerToPath } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/index.js';
import { unixSocketPath, unixSocketUrl } from '../../src/queue/redis-connection.js';

const minimal = {
  sources: [{ id: 'a', platform: 'cloud', secrets: ['s3cret'] }],
  targets: [{ id: 'j', url: 'http://jenkins:8080/bitbucket-hook/' }],
  routes: [{ source: 'a', targets: ['j'] }],
};

function problems(tree: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    buildConfig(tree, env, undefined, () => {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config', () => {
  it('fills defaults and freezes the result', () => {
    const c = buildConfig(minimal, {});
    expect(c.ingress).toMatchObject({ port: 8080, bodyLimit: 1048576 });
    expect(c.targets[0]).toMatchObject({ type: 'http', timeout: 10000, concurrency: 4 });
    expect(c.targets[0]!.retry.maxAge).toBe(86_400_000);
    expect(c.routes[0]).toMatchObject({ id: 'route-0', events: ['*'], repos: ['*'] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.targets[0]!.retry)).toBe(true);
    expect(() => {
      (c.ingress as { port: number }).port = 1;
    }).toThrow();
  });

  it('names the path of the bad key', () => {
    const bad = { ...minimal, targets: [minimal.targets[0], { id: 'k', url: 'not a url' }] };
    expect(problems(bad)).toContain('targets[1].url: must be a URL (http or https)');
    expect(problems({ ...minimal, routes: [{ source: 'a', targets: ['j'], colour: 'red' }] })).toEqual([
      'routes[0].colour: is not a known key',
    ]);
    expect(problems({ ...minimal, sources: [{ id: 'a', platform: 'github', secrets: ['x'] }] })).toEqual([
      'sources[0].platform: must be one of: cloud, datacenter',
    ]);
    expect(problems({ ...minimal, targets: [{ id: 'j' }] })).toEqual(['targets[0].url: is required']);
    expect(problems({ ...minimal, targets: [{ ...minimal.targets[0], retry: { maxAge: 'soon' } }] })).toEqual(
      ['targets[0].retry.maxAge: must be a duration (milliseconds, or like "30s", "5m", "2h")'],
    );
    expect(
      problems({ ...minimal, targets: [{ ...minimal.targets[0], auth: { type: 'kerberos' } }] }),
    ).toEqual(['targets[0].auth.type: must be one of: bearer, basic, token, oauth2']);
  });

  it('reaches Redis by TCP or TLS URL, or by a Unix socket path', () => {
    expect(buildConfig({ ...minimal, redis: { url: 'rediss://cache:6380' } }, {}).redis.url).toBe(
      'rediss://cache:6380',
    );
    expect(problems({ ...minimal, redis: { url: 'unix:///run/redis/redis.sock' } })).toEqual([]);
    expect(unixSocketPath('unix:///run/redis%20x/redis.sock')).toBe('/run/redis x/redis.sock');
    expect(unixSocketPath('redis://127.0.0.1:6379')).toBeUndefined();
    for (const path of ['/srv/a#1/redis.sock', '/tmp/what?/r.sock', '/data/100%/r e d i s.sock']) {
      expect(unixSocketPath(unixSocketUrl(path))).toBe(path);
    }
    for (const url of ['http://cache:6379', 'unix:redis.sock', '/run/redis/redis.sock']) {
      expect(problems({ ...minimal, redis: { url } })).toEqual([
        'redis.url: must be a redis://, rediss:// or unix:/// (socket path) URL',
      ]);
    }
  });

  it('shards the keyspace only on a cluster', () => {
    const cluster = ['127.0.0.1:7001', '127.0.0.1:7002'];
    expect(buildConfig(minimal, {}).redis.shards).toBe(1);
    expect(buildConfig({ ...minimal, redis: { cluster } }, {}).redis.shards).toBe(12);
    expect(buildConfig({ ...minimal, redis: { cluster, shards: 3 } }, {}).redis.shards).toBe(3);
    expect(problems({ ...minimal, redis: { url: 'redis://x:6379', shards: 4 } })).toContain(
      'redis.shards: only with redis.cluster (one Redis has one shard)',
    );
    expect(problems({ ...minimal, redis: { cluster, durability: 'replicated' } })).toEqual([]);
  });

  it('checks references between sections', () => {
    expect(problems({ ...minimal, routes: [{ source: 'zz', targets: ['j', 'nope'] }] })).toEqual([
      'routes[0].source: unknown source "zz"',
      'routes[0].targets[1]: unknown target "nope"',
    ]);
    expect(problems({ ...minimal, targets: [minimal.targets[0], minimal.targets[0]] })).toEqual([
      'targets[1].id: duplicate id "j"',
    ]);
  });

  it('takes only Standard Webhooks signing secrets, and says how to make one', () => {
    const withSecret = (signingSecret: string) => ({
      ...minimal,
      targets: [{ ...minimal.targets[0], signingSecret }],
    });
    expect(problems(withSecret(`whsec_${Buffer.alloc(32, 1).toString('base64')}`))).toEqual([]);
    // What `hookrelay secret new` prints for a Bitbucket webhook: 64 hex characters, used raw by nobody's verifier.
    const [hex] = problems(withSecret('ab'.repeat(32)));
    expect(hex).toMatch(/^targets\[0\]\.signingSecret: must start with whsec_/);
    expect(hex).toContain('hookrelay secret new --standard-webhooks');
    expect(problems(withSecret(`whsec_${Buffer.alloc(16, 1).toString('base64')}`))[0]).toMatch(
      /^targets\[0\]\.signingSecret: must encode 24 to 64 random bytes \(it encodes 16\)/,
    );
  });

  it('jenkins-branch-source: serverUrl for Data Center sources, only on that type; events are globs', () => {
    const tree = (target: Record<string, unknown>, platform = 'datacenter') => ({
      sources: [{ id: 'a', platform, secrets: ['s3cret'] }],
      targets: [{ id: 'j', url: 'https://ci.acme.test', ...target }],
      routes: [{ source: 'a', targets: ['j'] }],
    });
    expect(problems(tree({ type: 'jenkins-branch-source' }))).toEqual([
      "targets[0].serverUrl: is required for a Data Center source's events",
    ]);
    expect(problems(tree({ type: 'jenkins-branch-source', serverUrl: 'https://bb.acme.test' }))).toEqual([]);
    expect(problems(tree({ type: 'jenkins-branch-source' }, 'cloud'))).toEqual([]);
    expect(problems(tree({ serverUrl: 'https://bb.acme.test' }))).toEqual([
      'targets[0].serverUrl: only for type jenkins-branch-source',
    ]);
    expect(problems(tree({ events: [] }))).toEqual(['targets[0].events: must NOT have fewer than 1 items']);
    expect(buildConfig(tree({ events: ['repo:*'] }), {}).targets[0]!.events).toEqual(['repo:*']);
  });

  it('loop guard keys: chain defaults, skipSuperseded only without coalescing, Data Center API access', () => {
    const config = buildConfig(minimal, {});
    expect(config.loop.chain).toEqual({ maxTurns: 8, memory: 3_600_000, actors: ['*'] });
    expect(config.relay.id).toBeUndefined();
    expect(config.routes[0]!.skipSuperseded).toBe(false);
    expect(problems({ ...minimal, loop: { chain: { maxTurns: 0 } } })).toEqual([
      'loop.chain.maxTurns: must be >= 1',
    ]);
    expect(
      problems({
        ...minimal,
        routes: [{ source: 'a', targets: ['j'], coalesce: 'latest-per-ref', skipSuperseded: true }],
      }),
    ).toEqual([
      'routes[0].skipSuperseded: only without coalesce (latest-per-ref already sends only the newest push)',
    ]);
    const dc = (api: object) => ({
      ...minimal,
      sources: [
        { id: 'a', platform: 'datacenter', secrets: ['s'], api: { url: 'https://bb.acme.test', ...api } },
      ],
    });
    expect(problems(dc({ token: 't' }))).toEqual([]);
    expect(problems(dc({ username: 'u' }))).toEqual(['sources[0].api: username and password go together']);
    expect(problems(dc({}))).toEqual(['sources[0].api: needs a token (or username and password)']);
    expect(
      problems({ ...minimal, sources: [{ ...minimal.sources[0], api: { url: 'https://x', token: 't' } }] }),
    ).toEqual(['sources[0].api: only for platform datacenter (Cloud payloads carry commit messages)']);
  });

  it('replaces ${VAR} from the environment, allows ${VAR:-default}, and drops empty secrets', () => {
    const tree = {
      ...minimal,
      sources: [{ id: 'a', platform: 'cloud', secrets: ['${BB_SECRET}', '${BB_SECRET_OLD:-}'] }],
    };
    const c = buildConfig(tree, { BB_SECRET: 'from-env' });
    expect(c.sources[0]!.secrets).toEqual(['from-env']);
    expect(problems(tree, {})).toEqual([
      'sources[0].secrets[0]: environment variable BB_SECRET is not set (use ${BB_SECRET:-} to allow empty)',
    ]);
    // A source whose secrets are all empty would accept anything signed with an empty key: refused.
    expect(problems(tree, { BB_SECRET: '' })).toEqual([
      'sources[0].secrets: needs at least one non-empty secret',
    ]);
  });

  it('never lets an environment value inject YAML structure', () => {
    const c = parseConfigText(
      'sources: [{ id: a, platform: cloud, secrets: ["${S}"] }]\ntargets: [{ id: j, url: "http://x/" }]\nroutes: [{ source: a, targets: [j] }]\n',
      { S: '"]\nadmin: {port: 1}' },
    );
    expect(c.sources[0]!.secrets[0]).toBe('"]\nadmin: {port: 1}');
    expect(c.admin.port).toBe(8081);
  });

  it('reports YAML syntax errors and unreadable files as config errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hr-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'sources: [\n  - id: a\n');
    expect(() => loadConfig(file, {})).toThrow(ConfigError);
    expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(/cannot read file/);
  });

  it('converts durations and JSON pointers', () => {
    const c = buildConfig(
      { ...minimal, targets: [{ ...minimal.targets[0], retry: { schedule: ['5s', '30s', '5m', 1500] } }] },
      {},
    );
    expect(c.targets[0]!.retry.schedule).toEqual([5000, 30000, 300000, 1500]);
    expect(pointerToPath('/targets/1/url')).toBe('targets[1].url');
    expect(pointerToPath('')).toBe('');
  });

  it('every duration key takes a string with a unit or milliseconds, and holds milliseconds', () => {
    const c = buildConfig(
      {
        ...minimal,
        redis: { commandTimeout: '500ms' },
        ingress: { dedupe: { deliveryIdWindow: '1h', contentWindow: 0 } },
        targets: [{ ...minimal.targets[0], timeout: 2500 }],
        loop: { collapseWait: '5s', chain: { memory: '2h' }, maxTriggersPerRef: { window: '1m' } },
      },
      {},
    );
    expect(c.redis.commandTimeout).toBe(500);
    expect(c.ingress.dedupe).toEqual({ deliveryIdWindow: 3_600_000, contentWindow: 0 });
    expect(c.targets[0]!.timeout).toBe(2500);
    expect(c.worker.shutdownGrace).toBe(4500);
    expect(c.worker.inboxTakeover).toBe(15_000);
    expect(c.loop).toMatchObject({ collapseWait: 5000, collapseWindow: 600_000 });
    expect(c.loop.chain.memory).toBe(7_200_000);
    expect(c.loop.maxTriggersPerRef.window).toBe(60_000);
  });

  it('a duration out of range names the key and the limit, with a unit', () => {
    const target = (extra: object) => ({ ...minimal, targets: [{ ...minimal.targets[0], ...extra }] });
    expect(problems(target({ timeout: '50ms' }))).toEqual([
      'targets[0].timeout: must be a duration of at least 100ms',
    ]);
    expect(problems(target({ timeout: '6m' }))).toEqual([
      'targets[0].timeout: must be a duration of at most 5m',
    ]);
    expect(problems({ ...minimal, worker: { inboxTakeover: '500ms' } })).toEqual([
      'worker.inboxTakeover: must be a duration of at least 1s',
    ]);
    expect(problems(target({ timeout: 'soon' }))).toEqual([
      'targets[0].timeout: must be a duration (milliseconds, or like "30s", "5m", "2h")',
    ]);
  });

  it('old unit-suffixed keys still work, with one warning each naming the old and the new key', () => {
    const warnings: string[] = [];
    const c = buildConfig(
      {
        ...minimal,
        redis: { commandTimeoutMs: 1500 },
        ingress: { dedupe: { deliveryIdSeconds: 60, contentSeconds: 0 } },
        targets: [{ ...minimal.targets[0], timeoutMs: 3000 }],
        loop: { collapseWaitSeconds: 5, collapseWindowSeconds: 30, chain: { memorySeconds: 90 } },
      },
      {},
      undefined,
      (message) => warnings.push(message),
    );
    expect(c.redis.commandTimeout).toBe(1500);
    expect(c.ingress.dedupe).toEqual({ deliveryIdWindow: 60_000, contentWindow: 0 });
    expect(c.targets[0]!.timeout).toBe(3000);
    expect(c.targets[0]).not.toHaveProperty('timeoutMs');
    expect(c.loop).toMatchObject({ collapseWait: 5000, collapseWindow: 30_000 });
    expect(c.loop.chain.memory).toBe(90_000);
    expect(warnings).toHaveLength(7);
    expect(warnings).toContain(
      'targets[0].timeoutMs is deprecated: use targets[0].timeout (a duration such as "10s", or milliseconds)',
    );
    expect(warnings).toContain(
      'loop.chain.memorySeconds is deprecated: use loop.chain.memory (a duration such as "10s", or milliseconds)',
    );
  });

  it('an old key with a bad value is named as the file has it; old and new key together is a mistake', () => {
    const target = (extra: object) => ({ ...minimal, targets: [{ ...minimal.targets[0], ...extra }] });
    expect(problems(target({ timeoutMs: 50 }))).toEqual([
      'targets[0].timeoutMs: must be a duration of at least 100ms',
    ]);
    expect(problems({ ...minimal, loop: { collapseWindowSeconds: 0 } })).toEqual([
      'loop.collapseWindowSeconds: must be a duration of at least 1s',
    ]);
    expect(problems(target({ timeoutMs: 5000, timeout: '5s' }))).toEqual([
      'targets[0].timeoutMs: replaced by timeout; set only timeout',
    ]);
  });
});
