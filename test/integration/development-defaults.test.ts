/**
 * The example config's development credentials: the real CLI (`npm run build` first) warns when they are in
 * use and refuses to start when a listener that exposes them is on a non-loopback address.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { isLoopbackHost } from '../../src/config/development-defaults.js';
import { runCli, startCliServer } from '../helpers/cli.js';
import { startTestRedis } from '../helpers/redis.js';

vi.setConfig({ testTimeout: 90_000 });

let redis: Awaited<ReturnType<typeof startTestRedis>>;
let dir: string;

beforeAll(async () => {
  redis = await startTestRedis();
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-devdefaults-'));
});
afterAll(async () => {
  await redis?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(
  name: string,
  o: { ingressHost: string; adminHost: string; secret: string; token: string },
) {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      redis: { url: redis.url, prefix: `dev${name}` },
      ingress: { host: o.ingressHost, port: 0 },
      admin: { host: o.adminHost, port: 0, tokens: [{ name: 'ops', token: o.token, role: 'operator' }] },
      sources: [{ id: 'cloud', platform: 'cloud', secrets: [o.secret] }],
      targets: [{ id: 'ci', url: 'http://127.0.0.1:9/hook' }],
      routes: [{ source: 'cloud', targets: ['ci'] }],
    }),
  );
  return file;
}

const REAL_TOKEN = 'a-real-admin-token-4f7d0c9e2b';
const REAL_SECRET = 'a-real-webhook-secret-9c1e';

describe('development credentials of the example config', () => {
  it('refuse to start when the listener that exposes them is not on loopback, naming the keys', async () => {
    const secretOnAll = writeConfig('secret', {
      ingressHost: '0.0.0.0',
      adminHost: '127.0.0.1',
      secret: 'dev-cloud-secret',
      token: REAL_TOKEN,
    });
    const ingress = await runCli(['ingress', '--config', secretOnAll], {}, 20_000);
    expect(ingress.code).toBe(2);
    expect(ingress.stderr).toContain('sources[0].secrets[0]');
    expect(ingress.stderr).toContain('ingress.host is 0.0.0.0');
    expect(ingress.stderr).not.toContain('dev-cloud-secret');

    const tokenOnAll = writeConfig('token', {
      ingressHost: '127.0.0.1',
      adminHost: '::',
      secret: REAL_SECRET,
      token: 'dev-admin-token-change-me',
    });
    const admin = await runCli(['admin', '--config', tokenOnAll], {}, 20_000);
    expect(admin.code).toBe(2);
    expect(admin.stderr).toContain('admin.tokens[0].token');
    expect(admin.stderr).toContain('admin.host is ::');
  });

  it('warn at start when they are in use on loopback only', async () => {
    const file = writeConfig('loopback', {
      ingressHost: '127.0.0.1',
      adminHost: '127.0.0.1',
      secret: 'dev-cloud-secret',
      token: REAL_TOKEN,
    });
    const server = await startCliServer(['ingress', '--config', file], 'ingress listening');
    try {
      const warning = server
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.key === 'sources[0].secrets[0]');
      expect(warning).toMatchObject({ level: 40, listener: 'ingress.host' });
      expect(server.output()).not.toContain('"dev-cloud-secret"');
    } finally {
      await server.stop();
    }
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (h) => {
      expect(isLoopbackHost(h)).toBe(true);
    },
  );
  it.each(['0.0.0.0', '::', '', '10.0.0.1', 'relay.example.com', '::ffff:10.0.0.1'])('%j is not', (h) => {
    expect(isLoopbackHost(h)).toBe(false);
  });
});
