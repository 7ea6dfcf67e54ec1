/**
 * Static checks of the deployment files, with the real tools and no Docker engine: docker-compose.yml parses
 * and validates (`docker-compose config -q`, Debian's docker-compose 1.29), and haproxy.cfg passes
 * `haproxy -c` with the settings the tests use. Both tools are required: CI installs them, this never skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BIN } from '../helpers/cli.js';
import { requireBinary } from './helpers/processes.js';
import { HAPROXY_CFG, makeDevCert, REPO, requireHaproxy } from './helpers/stack.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hookrelay-compose-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function compose(args: string[]) {
  // The services read `env_file: .env`, which must exist next to the project: the project directory is a
  // temp dir holding a copy of .env.example as .env, so the check never reads (or needs) a developer's .env.
  return spawnSync(
    'docker-compose',
    [
      '-f',
      join(REPO, 'docker-compose.yml'),
      '--project-directory',
      dir,
      '--env-file',
      join(dir, '.env'),
      ...args,
    ],
    // Only PATH: a COMPOSE_* or HR_* variable in the developer's shell must not change the result.
    { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, cwd: dir },
  );
}

describe('docker-compose.yml', () => {
  beforeAll(() => {
    requireBinary(
      'docker-compose',
      ['version'],
      'Install it (Debian/Ubuntu: apt-get install docker-compose; add docker-compose to the install list in .ci/run).',
    );
    // The documented way to make .env: the real, built CLI (`npm run build` first).
    const init = spawnSync(process.execPath, [BIN, 'env', 'init'], { encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    writeFileSync(join(dir, '.env'), init.stdout);
  });

  it('is valid (`docker-compose config -q` exits 0) with the .env that `hookrelay env init` writes', () => {
    const r = compose(['config', '-q']);
    expect(r.stderr, r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 60_000);

  it('runs Redis with AOF, an edge, two ingresses, two workers and admin, each with a healthcheck', () => {
    const r = compose(['config']);
    expect(r.status, r.stderr).toBe(0);
    const cfg = parse(r.stdout) as {
      services: Record<string, Record<string, unknown>>;
      volumes: Record<string, unknown>;
    };
    expect(Object.keys(cfg.services).sort()).toEqual(
      ['admin', 'haproxy', 'ingress1', 'ingress2', 'redis', 'worker1', 'worker2'].sort(),
    );
    const redis = cfg.services.redis!;
    expect((redis.command as string[]).join(' ')).toMatch(
      /--appendfsync everysec.*--maxmemory-policy noeviction/,
    );
    expect(redis.healthcheck).toBeDefined();
    expect(Object.keys(cfg.volumes)).toContain('redis-data');
    expect(JSON.stringify(cfg.services.haproxy!.ports)).toMatch(/443/);
    for (const name of ['ingress1', 'ingress2', 'worker1', 'worker2']) {
      const svc = cfg.services[name]!;
      expect((svc.depends_on as Record<string, { condition: string }>).redis?.condition, name).toBe(
        'service_healthy',
      );
      expect(svc.image, name).toBe('hookrelay:local');
    }
    for (const [name, svc] of Object.entries(cfg.services)) expect(svc.healthcheck, name).toBeDefined();
  }, 60_000);

  it('starts as shipped: its relay config passes `hookrelay config check` with that .env', () => {
    // What docker-compose hands the relay containers (env_file: .env): KEY=VALUE lines, comments skipped.
    const env = Object.fromEntries(
      readFileSync(join(dir, '.env'), 'utf8')
        .split('\n')
        .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line))
        .filter((m) => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
    for (const name of ['HOOKRELAY_ADMIN_TOKEN', 'BB_SECRET', 'BB_DC_SECRET', 'JENKINS_TOKEN']) {
      expect(env[name], name).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(env.BB_SECRET_OLD).toBe('');
    const check = spawnSync(
      process.execPath,
      [BIN, 'config', 'check', '--config', join(REPO, 'config', 'hookrelay.compose.yaml')],
      { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } },
    );
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(check.stdout).toMatch(/: ok \(2 sources, 1 targets, 2 routes\)/);
  }, 60_000);
});

describe('haproxy/haproxy.cfg', () => {
  it('passes `haproxy -c` with the allowlist on and off', () => {
    requireHaproxy();
    const cert = makeDevCert(join(dir, 'cert'));
    const adminNets = join(dir, 'admin.lst');
    writeFileSync(adminNets, '10.0.0.0/8\n');
    for (const allowlist of ['off', 'on']) {
      const r = spawnSync('haproxy', ['-c', '-f', HAPROXY_CFG], {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
          HR_HTTP_BIND: '127.0.0.1:18080', // -c parses, it does not bind,
          HR_HTTPS_BIND: '127.0.0.1:18443',
          HR_CERT: cert.pem,
          HR_INGRESS1: '127.0.0.1:1',
          HR_INGRESS2: '127.0.0.1:2',
          HR_ADMIN: '127.0.0.1:3',
          HR_ALLOWLIST: allowlist,
          HR_ALLOWLIST_FILE: join(REPO, 'haproxy', 'bitbucket-ips.lst'),
          HR_ADMIN_NETS_FILE: adminNets,
          HR_STATS_SOCKET: join(dir, 'check.sock'),
        },
      });
      expect(r.status, `${allowlist}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout + r.stderr).toContain('Configuration file is valid');
    }
  });
});
