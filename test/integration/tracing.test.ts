import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudPush } from '../fixtures/payloads.js';
import { waitFor } from '../helpers/admin.js';
import { cloudRequest } from '../helpers/bitbucket.js';
import { startCliServer } from '../helpers/cli.js';
import { SECRETS } from '../helpers/config.js';
import { useTestRedis } from '../helpers/redis.js';
import { startTargetServer, type TargetServer } from '../helpers/target-server.js';

const db = useTestRedis();

interface OtlpSpan {
  traceId: string;
  spanId: string;
  name: string;
  kind: number;
  links?: { traceId: string; spanId: string }[];
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** Spans from OTLP/HTTP JSON export requests (ExportTraceServiceRequest: resourceSpans → scopeSpans → spans). */
function spansOf(collector: TargetServer): OtlpSpan[] {
  return collector.received.flatMap((r) => {
    const body = JSON.parse(r.body.toString('utf8')) as {
      resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
    };
    return body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
  });
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value ? Object.values(value)[0] : undefined;
}

describe('OpenTelemetry traces', () => {
  let dir: string;
  let target: TargetServer;
  let collector: TargetServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookrelay-tracing-'));
    target = await startTargetServer();
    // A collector's OTLP/HTTP receiver answers 200 with an ExportTraceServiceResponse, `{}` when all was taken
    // (opentelemetry-proto, docs/specification.md, "OTLP/HTTP Response").
    collector = await startTargetServer(() => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }));
  });

  afterAll(async () => {
    await target.close();
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one webhook: an ingress span, a delivery span linked to it, and traceparent at the target', async () => {
    const config = join(dir, 'hookrelay.yaml');
    writeFileSync(
      config,
      `
redis: { url: "${db.url}", prefix: tracing }
ingress: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets: [{ id: ci, url: "${target.url}/hook" }]
routes: [{ source: cloud, targets: [ci] }]
`,
    );
    const relay = await startCliServer(['start', '--config', config], 'ingress listening', {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_SERVICE_NAME: 'hookrelay-under-test',
      // Export every 100 ms instead of every 5 s, so the test does not wait on the batch timer.
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      const req = cloudRequest('repo:push', cloudPush());
      const res = await fetch(`${relay.url}/hooks/cloud`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      expect(res.status).toBe(202);
      const eventId = ((await res.json()) as { id: string }).id;
      const [delivered] = await target.waitFor(1);

      const spans = await waitFor<{ all: OtlpSpan[]; ingress: OtlpSpan; delivery: OtlpSpan }>(async () => {
        const all = spansOf(collector);
        const ingress = all.find((s) => s.name === 'POST /hooks/{sourceId}');
        const delivery = all.find((s) => s.name === 'deliver to ci');
        return ingress && delivery && all.some((s) => s.name === 'store event')
          ? { all, ingress, delivery }
          : undefined;
      });
      const { ingress, delivery, all } = spans;
      expect(ingress.kind).toBe(2); // SPAN_KIND_SERVER
      expect(attribute(ingress, 'hookrelay.event_id')).toBe(eventId);
      expect(attribute(ingress, 'hookrelay.source')).toBe('cloud');
      expect(attribute(ingress, 'bitbucket.event_key')).toBe('repo:push');
      expect(attribute(ingress, 'hookrelay.outcome')).toBe('accepted');
      const store = all.find((s) => s.name === 'store event')!;
      expect(store.traceId).toBe(ingress.traceId);

      // The delivery runs later and elsewhere: its own trace, linked to the request that stored the event.
      expect(delivery.kind).toBe(3); // SPAN_KIND_CLIENT
      expect(delivery.links).toEqual([
        expect.objectContaining({ traceId: ingress.traceId, spanId: ingress.spanId }),
      ]);
      expect(attribute(delivery, 'hookrelay.target')).toBe('ci');
      expect(String(attribute(delivery, 'hookrelay.attempt'))).toBe('1');
      expect(attribute(delivery, 'vcs.repository.name')).toBe('acme/widgets');
      expect(attribute(delivery, 'hookrelay.outcome')).toBe('delivered');
      expect(delivered!.headers.traceparent).toBe(`00-${delivery.traceId}-${delivery.spanId}-01`);

      // Ids and codes only: no payload, signature or secret reaches the collector.
      const exported = collector.received.map((r) => r.body.toString('utf8')).join('\n');
      expect(exported).toContain('hookrelay-under-test');
      expect(exported).not.toContain(req.headers['x-hub-signature']!.slice(7));
      expect(exported).not.toContain(SECRETS.cloud);
      const payload = JSON.parse(req.body.toString('utf8'));
      expect(exported).not.toContain(payload.push.changes[0].new.target.message);
    } finally {
      await relay.stop();
    }
  });

  it('a delivery that looks something up first carries the same traceparent on each of its requests', async () => {
    // Bamboo answers as in test/contract/bamboo.test.ts (PlanResource, QueueResource): the plan branch's key,
    // then the queued build.
    const bamboo = await startTargetServer((req) =>
      req.method === 'GET'
        ? {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ key: 'WID-CI3', shortName: 'feature-x', enabled: true }),
          }
        : {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ planKey: 'WID-CI3', buildNumber: 1, buildResultKey: 'WID-CI3-1' }),
          },
    );
    const config = join(dir, 'bamboo.yaml');
    writeFileSync(
      config,
      `
redis: { url: "${db.url}", prefix: tracing-bamboo }
ingress: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
sources: [{ id: cloud, platform: cloud, secrets: ["${SECRETS.cloud}"] }]
targets:
  - id: bamboo
    type: bamboo
    url: "${bamboo.url}/rest/api/latest/queue/WID-CI"
    defaultBranch: main
routes: [{ source: cloud, targets: [bamboo] }]
`,
    );
    const relay = await startCliServer(['start', '--config', config], 'ingress listening', {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    try {
      const req = cloudRequest('repo:push', cloudPush({ ref: 'feature/x' }));
      const res = await fetch(`${relay.url}/hooks/cloud`, {
        method: 'POST',
        headers: req.headers,
        body: req.body,
      });
      expect(res.status).toBe(202);
      const [lookup, queued] = await bamboo.waitFor(2);
      expect([lookup!.method, queued!.method]).toEqual(['GET', 'POST']);
      expect(new URL(queued!.url, 'http://x').pathname).toBe('/rest/api/latest/queue/WID-CI3');
      const delivery = await waitFor(async () =>
        spansOf(collector).find((s) => s.name === 'deliver to bamboo'),
      );
      const traceparent = `00-${delivery.traceId}-${delivery.spanId}-01`;
      expect(lookup!.headers.traceparent).toBe(traceparent);
      expect(queued!.headers.traceparent).toBe(traceparent);
    } finally {
      await relay.stop();
      await bamboo.close();
    }
  });
});
