import { type Span, type SpanContext, SpanKind, TraceFlags, type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

/**
 * OpenTelemetry tracing, configured the standard way: by the `OTEL_*` environment variables that the SDK
 * itself reads (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, …).
 * Without an endpoint it stays off and the hot paths skip every tracing call (they check `tracer` first), so a
 * relay without a collector pays nothing for it.
 */
let tracer: Tracer | undefined;
let provider: NodeTracerProvider | undefined;

export type TracingEnv = Readonly<Record<string, string | undefined>>;

/** Whether the environment asks for traces: an OTLP endpoint, and neither the SDK nor the exporter switched off. */
export function tracingWanted(env: TracingEnv): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER !== undefined && env.OTEL_TRACES_EXPORTER !== 'otlp') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts the exporter once per process when the environment asks for it; returns whether tracing is on. */
export function startTracing(role: string, env: TracingEnv = process.env): boolean {
  if (tracer) return true;
  if (!tracingWanted(env)) return false;
  const resource = resourceFromAttributes({ 'service.name': 'hookrelay', 'hookrelay.role': role }).merge(
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults above.
    detectResources({ detectors: [envDetector] }),
  );
  provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  provider.register();
  tracer = trace.getTracer('hookrelay');
  return true;
}

/** Sends what is buffered and stops: called once on shutdown so the last spans are not lost. */
export async function stopTracing(): Promise<void> {
  const stopping = provider;
  provider = undefined;
  tracer = undefined;
  await stopping?.shutdown();
}

export function activeTracer(): Tracer | undefined {
  return tracer;
}

/** The W3C `traceparent` of a span: how its context crosses the queue and reaches the CI target. */
export function traceparentOf(context: SpanContext): string {
  const flags = (context.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00';
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A span context from a `traceparent` stored with an event; undefined for anything malformed. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  const match = value ? TRACEPARENT.exec(value) : null;
  if (!match) return undefined;
  return {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
  };
}

export { type Span, SpanKind };
