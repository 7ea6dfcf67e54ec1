import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * One registry per process. Labels are ids from config (source, target), outcomes and reasons from fixed
 * lists: never anything taken from a payload, so cardinality stays bounded and nothing secret leaks.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'hookrelay_process_',
    eventLoopMonitoringPrecision: 20,
  });
  const m = {
    registry,
    ingressRequests: new Counter({
      name: 'hookrelay_ingress_requests_total',
      help: 'Webhook requests by source and outcome (accepted, duplicate, ping, or the error code)',
      labelNames: ['source', 'outcome'] as const,
      registers: [registry],
    }),
    ingressDuplicates: new Counter({
      name: 'hookrelay_ingress_duplicates_total',
      help: "Webhooks that are copies of a stored event, by source: a request answered 200 (same delivery id or body), or at fan-out a second hook's copy of the same changes",
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    ingressQuarantined: new Counter({
      name: 'hookrelay_ingress_quarantined_total',
      help: 'Signed webhooks quarantined by the fan-out (not UTF-8 or JSON, too deep, unexpected shape or field types), by source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    // `key` comes from a signed header but is bounded: well formed, at most UNKNOWN_KEY_LABELS per source.
    unknownEventKeys: new Counter({
      name: 'hookrelay_unknown_event_keys_total',
      help: 'Signed webhooks whose well-formed event key the relay does not know (stored as family other)',
      labelNames: ['source', 'key'] as const,
      registers: [registry],
    }),
    ingressDuration: new Histogram({
      name: 'hookrelay_ingress_request_duration_seconds',
      help: 'Time from request start to answer on the ingress',
      labelNames: ['source'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
      registers: [registry],
    }),
    // The fan-out (src/fanout/) runs in the worker processes: these are in their registry.
    fanOutLag: new Histogram({
      name: 'hookrelay_fanout_lag_seconds',
      help: 'Time from the ingress 202 to the fan-out routing the event (jobs written, or quarantined)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10, 60],
      registers: [registry],
    }),
    fanOutEvents: new Counter({
      name: 'hookrelay_fanout_events_total',
      help: 'Received events the fan-out decided, by source and decision (routed, quarantined, duplicate)',
      labelNames: ['source', 'decision'] as const,
      registers: [registry],
    }),
    // Only where one process runs two adjacent stages: ingress and fan-out (`hookrelay start`), fan-out and
    // delivery (`start` and `worker`); see local-handoff.ts.
    localHandoff: new Counter({
      name: 'hookrelay_local_handoff_total',
      help: 'Events one stage handed to the next in this process, by stage (received: ingress to fan-out; routed: fan-out to delivery) and result (hit; miss: read from Redis instead; dropped: past its age or a bound before it was taken)',
      labelNames: ['stage', 'result'] as const,
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'hookrelay_deliveries_total',
      help: 'Delivery attempts by target and outcome (delivered, retry, dead, suppressed, coalesced, not-applicable)',
      labelNames: ['target', 'outcome'] as const,
      registers: [registry],
    }),
    deadLetterWriteFailures: new Counter({
      name: 'hookrelay_dead_letter_write_failures_total',
      help: 'Dead letters whose state or index entry could not be written to Redis, by target',
      labelNames: ['target'] as const,
      registers: [registry],
    }),
    attemptDuration: new Histogram({
      name: 'hookrelay_delivery_attempt_duration_seconds',
      help: 'Duration of one HTTP attempt to a target',
      labelNames: ['target'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    loopSuppressed: new Counter({
      name: 'hookrelay_loop_suppressed_total',
      help: 'Deliveries held back by the loop guard, by target and reason',
      labelNames: ['target', 'reason'] as const,
      registers: [registry],
    }),
    circuitState: new Gauge({
      name: 'hookrelay_circuit_open',
      help: '1 while the circuit breaker of a target is open',
      labelNames: ['target'] as const,
      registers: [registry],
    }),
    superseded: new Counter({
      name: 'hookrelay_superseded_deliveries_total',
      help: 'Pushes older (by the branch graph) than one already delivered to the target, by action (sent, skipped)',
      labelNames: ['target', 'action'] as const,
      registers: [registry],
    }),
    commitMessageMissing: new Counter({
      name: 'hookrelay_commit_message_missing_total',
      help: 'Data Center pushes without a commit message in the payload (older servers), by source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    commitMessageLookups: new Counter({
      name: 'hookrelay_commit_message_lookups_total',
      help: 'Commit messages read through the Data Center REST API, by source and outcome (fetched, failed)',
      labelNames: ['source', 'outcome'] as const,
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
