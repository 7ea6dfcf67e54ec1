import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { buildConfig } from '../../src/config/load-config.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}

/** The manifests exactly as `kubectl apply -k` would send them (kubectl's built-in kustomize renders them). */
function render(folder: string): Manifest[] {
  const text = execFileSync('kubectl', ['kustomize', resolve(root, folder)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((doc) => doc.toJS() as Manifest);
}

/**
 * Validates one object against the schema of its apiVersion and kind, as generated from the Kubernetes OpenAPI
 * spec (kubernetes-models) and the Prometheus Operator's CRDs (@kubernetes-models/prometheus-operator).
 * A kind without a model fails the test instead of passing unchecked.
 */
async function validate(manifest: Manifest): Promise<void> {
  const version = manifest.apiVersion.includes('/') ? manifest.apiVersion : `v1`;
  const module = version.startsWith('monitoring.coreos.com/')
    ? await import(`@kubernetes-models/prometheus-operator/${version}/${manifest.kind}`)
    : await import(`kubernetes-models/${version}/${manifest.kind}`);
  const Model = module[manifest.kind] as new (data: unknown) => { validate(): void };
  new Model(manifest).validate();
}

type Container = {
  name: string;
  args: string[];
  ports: { name: string }[];
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
};

describe('Kubernetes manifests', () => {
  const base = render('deploy/kubernetes');

  it('render and validate against the Kubernetes schemas', async () => {
    const kinds = base.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Deployment/hookrelay-ingress',
        'Deployment/hookrelay-worker',
        'Deployment/hookrelay-admin',
        'PodDisruptionBudget/hookrelay-ingress',
        'HorizontalPodAutoscaler/hookrelay-worker',
        'Service/hookrelay-ingress',
        'Ingress/hookrelay',
      ]),
    );
    for (const manifest of base) await validate(manifest);
  });

  it('run each role in its own Deployment with liveness on /healthz and readiness on /readyz', () => {
    for (const role of ['ingress', 'worker', 'admin']) {
      const deployment = base.find(
        (m) => m.kind === 'Deployment' && m.metadata.name === `hookrelay-${role}`,
      )!;
      const pod = (deployment.spec as { template: { spec: { containers: Container[] } } }).template.spec;
      const container = pod.containers[0]!;
      expect(container.args[0]).toBe(role);
      expect(container.livenessProbe.httpGet.path).toBe('/healthz');
      expect(container.readinessProbe.httpGet.path).toBe('/readyz');
      // A probe naming a port the container does not declare is valid YAML and a pod that never gets ready.
      const ports = container.ports.map((p) => p.name);
      expect(ports).toContain(container.livenessProbe.httpGet.port);
      expect(ports).toContain(container.readinessProbe.httpGet.port);
    }
  });

  it('ship a config that hookrelay accepts once the Secret provides its variables', () => {
    const configMap = base.find((m) => m.kind === 'ConfigMap')!;
    const tree = parse(configMap.data!['hookrelay.yaml']!);
    const config = buildConfig(tree, {
      REDIS_URL: 'redis://redis.hookrelay.svc:6379',
      HOOKRELAY_ADMIN_TOKEN: 'operator-token-0123456789abcdef',
      HOOKRELAY_METRICS_TOKEN: 'viewer-token-0123456789abcdef',
      BB_SECRET: 'cloud-secret-0123456789abcdef',
      BB_DC_SECRET: 'dc-secret-0123456789abcdef',
      JENKINS_HOOK_URL: 'https://jenkins.example.com/bitbucket-scmsource-hook/notify',
    });
    expect(config.worker.metricsPort).toBe(9464);
    expect(config.admin.tokens.map((t) => t.role)).toEqual(['operator', 'viewer']);
  });

  it('monitoring resources validate, and the PrometheusRule carries exactly deploy/prometheus/alerts.yml', async () => {
    const monitoring = render('deploy/kubernetes/monitoring');
    for (const manifest of monitoring) await validate(manifest);
    const rule = monitoring.find((m) => m.kind === 'PrometheusRule')!;
    const alerts = parse(readFileSync(resolve(root, 'deploy/prometheus/alerts.yml'), 'utf8'));
    expect(rule.spec).toEqual({ groups: alerts.groups });
  });
});
