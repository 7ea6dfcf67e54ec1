import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runRelay } from '../../src/server.js';
import { startAdmin } from '../helpers/admin.js';
import { testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const rulesDir = resolve(root, 'deploy/prometheus');
const db = useTestRedis();

/** Every PromQL expression the shipped rules and dashboard evaluate. */
function shippedQueries(): { where: string; expr: string }[] {
  const rules = parse(readFileSync(resolve(rulesDir, 'alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const dashboard = JSON.parse(readFileSync(resolve(root, 'deploy/grafana/hookrelay.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  return [
    ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ...dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `panel ${p.title}`, expr: t.expr })),
    ),
  ];
}

/** `# TYPE name kind` of each metric a /metrics answer declares, whether or not it has samples yet. */
function declared(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('shipped monitoring', () => {
  it('passes promtool check rules and promtool test rules', () => {
    // Debian's prometheus package ships promtool; .ci/run installs it.
    const check = execFileSync('promtool', ['check', 'rules', 'alerts.yml'], {
      cwd: rulesDir,
      encoding: 'utf8',
    });
    expect(check).toContain('SUCCESS');
    const test = execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], {
      cwd: rulesDir,
      encoding: 'utf8',
    });
    expect(test).toContain('SUCCESS');
  });

  it('ships a Prometheus config that promtool accepts, token file beside it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookrelay-prometheus-'));
    try {
      for (const file of ['prometheus.yml', 'alerts.yml'])
        copyFileSync(resolve(rulesDir, file), join(dir, file));
      writeFileSync(join(dir, 'hookrelay-viewer-token'), 'viewer-token-0123456789abcdef', { mode: 0o600 });
      const out = execFileSync('promtool', ['check', 'config', 'prometheus.yml'], {
        cwd: dir,
        encoding: 'utf8',
      });
      expect(out).toContain('SUCCESS: 8 rules found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('queries only metrics that the ingress, a worker or the admin process serve', async () => {
    const token = 'viewer-token-0123456789abcdef';
    const config = testConfig(db.url, {
      worker: { metricsPort: 0 },
      admin: { tokens: [{ name: 'prometheus', token, role: 'viewer' }] },
    });
    const ingress = await startIngress(config, captureLogs().log);
    const worker = await runRelay(config, { ingress: false, worker: true }, captureLogs().log);
    const admin = await startAdmin(ingress.runtime);
    try {
      const texts = await Promise.all([
        fetch(`${ingress.url}/metrics`).then((r) => r.text()),
        fetch(`${worker.metricsUrl}/metrics`).then((r) => r.text()),
        fetch(`${admin.url}/metrics`, { headers: { authorization: `Bearer ${token}` } }).then((r) =>
          r.text(),
        ),
      ]);
      const served = new Map(texts.flatMap((t) => [...declared(t)]));
      const queries = shippedQueries();
      expect(queries.length).toBeGreaterThan(20);
      const missing: string[] = [];
      for (const { where, expr } of queries) {
        for (const [name] of expr.matchAll(/\bhookrelay_[a-z0-9_]+/g)) {
          const histogram = /^(.*)_(bucket|count|sum)$/.exec(name);
          const known = served.has(name) || (histogram !== null && served.get(histogram[1]!) === 'histogram');
          if (!known) missing.push(`${where}: ${name}`);
        }
      }
      expect(missing).toEqual([]);
    } finally {
      await admin.close();
      await worker.stop();
      await ingress.close();
    }
  });
});
