import { describe, expect, it } from 'vitest';
import { runRelay } from '../../src/server.js';
import { cloudPush } from '../fixtures/payloads.js';
import { cloudRequest, send } from '../helpers/bitbucket.js';
import { testConfig } from '../helpers/config.js';
import { startIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';
import { startTargetServer } from '../helpers/target-server.js';

const db = useTestRedis();

describe('per-process metrics', () => {
  it('the ingress serves its own request counters on /metrics, labelled by source and outcome only', async () => {
    const ing = await startIngress(testConfig(db.url), captureLogs().log);
    try {
      const req = cloudRequest('repo:push', cloudPush());
      expect((await send(ing.url, 'cloud', req)).status).toBe(202);
      expect(
        (await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush(), { secret: 'bad' }))).status,
      ).toBe(401);
      const text = await (await fetch(`${ing.url}/metrics`)).text();
      expect(text).toContain('hookrelay_ingress_requests_total{source="cloud",outcome="accepted"} 1');
      expect(text).toContain(
        'hookrelay_ingress_requests_total{source="cloud",outcome="SIGNATURE_INVALID"} 1',
      );
      expect(text).toContain('hookrelay_process_nodejs_eventloop_lag_seconds');
      expect(text).not.toContain(req.headers['x-hub-signature']!.slice(7));
      expect(text).not.toContain(req.headers['x-request-uuid']!);
    } finally {
      await ing.close();
    }
  });

  it('a worker-only process serves delivery counters on worker.metricsPort', async () => {
    const target = await startTargetServer();
    const config = testConfig(db.url, {
      targets: [{ id: 'ci', url: `${target.url}/hook` }],
      worker: { metricsPort: 0 },
    });
    const ing = await startIngress(config, captureLogs().log);
    const worker = await runRelay(config, { ingress: false, worker: true }, captureLogs().log);
    try {
      expect(worker.metricsUrl).toBeDefined();
      expect((await send(ing.url, 'cloud', cloudRequest('repo:push', cloudPush()))).status).toBe(202);
      await target.waitFor(1);
      let text = '';
      const deadline = Date.now() + 10_000;
      while (!text.includes('outcome="delivered"} 1') && Date.now() < deadline) {
        text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(text).toContain('hookrelay_deliveries_total{target="ci",outcome="delivered"} 1');
      expect(text).toContain('hookrelay_delivery_attempt_duration_seconds_count{target="ci"} 1');
      expect((await fetch(`${worker.metricsUrl}/healthz`)).status).toBe(200);
      // Kubernetes' readiness probe for a worker: Redis reachable now.
      expect(await (await fetch(`${worker.metricsUrl}/readyz`)).json()).toEqual({ ok: true });
    } finally {
      await worker.stop();
      await ing.close();
      await target.close();
    }
  });
});
