import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { SECRETS } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();

describe('start-up errors name the config key', () => {
  let dir: string;
  let taken: Server;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-cli-errors-'));
    taken = createServer();
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    port = (taken.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((done) => taken.close(done));
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['ingress', `ingress: { host: 127.0.0.1, port: PORT }`, 'ingress.host:ingress.port'],
    [
      'admin',
      `admin: { host: 127.0.0.1, port: PORT, tokens: [{ name: ops, token: "ops-token-0123456789abcdef" }] }`,
      'admin.host:admin.port',
    ],
  ])('a taken %s port', async (role, section, keys) => {
    const config = join(dir, `${role}.yaml`);
    writeFileSync(
      config,
      `
redis: { url: "${db.url}" }
${section.replace('PORT', String(port))}
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "http://127.0.0.1:9/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
    );
    const result = await runCli([role, '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${keys} = 127.0.0.1:${port} is already in use`);
  });
});

describe('a tool the embedded Redis needs, missing from PATH', () => {
  let dir: string;
  let config: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-no-tools-'));
    config = join(dir, 'hookrelay.yaml');
    writeFileSync(
      config,
      `
redis: { dataDir: "${join(dir, 'data')}" }
ingress: { host: 127.0.0.1, port: 0 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "http://127.0.0.1:9/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // The CLI itself is started by node's absolute path, so PATH can hold exactly the tools a case gives it.
  const pathWith = (name: string, tools: string[]) => {
    const bin = join(dir, name);
    mkdirSync(bin);
    for (const tool of tools)
      symlinkSync(execFileSync('which', [tool], { encoding: 'utf8' }).trim(), join(bin, tool));
    return bin;
  };

  it.each([
    ['nothing', [], 'redis-server is not on PATH'],
    ['redis-server only', ['redis-server'], 'sh is not on PATH'],
    ['redis-server and sh', ['redis-server', 'sh'], 'flock is not on PATH'],
  ])(
    'with %s: the missing one is named, nothing crashes, nothing is created',
    async (name, tools, message) => {
      const result = await runCli(['start', '--config', config], {
        PATH: pathWith(name.replace(/ /g, '-'), tools),
      });
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain('Or set redis.url');
      expect(result.stderr).not.toContain('Cannot read properties');
      expect(result.code).toBe(1);
      expect(existsSync(join(dir, 'data'))).toBe(false);
    },
  );
});

describe('config check and old key names', () => {
  it('accepts a unit-suffixed key and names the key that replaces it, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-cli-old-keys-'));
    try {
      const config = join(dir, 'old.yaml');
      writeFileSync(
        config,
        `sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "http://127.0.0.1:9/hook", timeoutMs: 5000 }]
routes: [{ source: cloud, targets: [ci] }]
`,
      );
      const { code, stdout, stderr } = await runCli(['config', 'check', '-c', config]);
      expect(code).toBe(0);
      expect(stdout).toContain('ok (1 sources, 1 targets, 1 routes)');
      expect(stderr.split('targets[0].timeoutMs is deprecated: use targets[0].timeout')).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
