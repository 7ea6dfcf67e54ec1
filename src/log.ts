import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Paths that must never reach a log line even if someone logs a request or job by mistake: secrets,
 * signatures, tokens, Authorization headers and payload bodies. Exact paths only (pino's redaction): see
 * NESTED_SECRET_KEYS for the same names one level down.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-hub-signature"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-hub-signature"]',
  'headers["webhook-signature"]',
  'body',
  'payload',
  'token',
  'secret',
  'secrets',
  'password',
];

/** Keys blanked in any object one level below a log line's own fields (a target's `auth.token`, …). */
export const NESTED_SECRET_KEYS: ReadonlySet<string> = new Set([
  'token',
  'secret',
  'secrets',
  'password',
  'clientSecret',
  'signingSecret',
]);

const CENSOR = '[redacted]';

/**
 * What `*.token`-style redact paths did, one level down, without their price: pino's wildcard redaction clones
 * the log object on every call, which costs far more than exact paths do, on two lines per event
 * (docs/benchmarks.md). Copies only what it blanks, keeping its prototype and hidden fields (an Error stays an
 * Error for pino's `err` serializer); never walks into buffers or arrays.
 */
export function redactNested(obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj;
  for (const key in obj) {
    const value = obj[key];
    if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value))
      continue;
    let descriptors: PropertyDescriptorMap | undefined;
    for (const inner in value) {
      if (!NESTED_SECRET_KEYS.has(inner)) continue;
      // Descriptors rather than assignment: a frozen object (the config is) must be copied, not written to.
      descriptors ??= Object.getOwnPropertyDescriptors(value);
      descriptors[inner] = { value: CENSOR, enumerable: true, writable: true, configurable: true };
    }
    if (!descriptors) continue;
    const copy: unknown = Object.create(Object.getPrototypeOf(value), descriptors);
    if (out === obj) out = { ...obj };
    out[key] = copy;
  }
  return out;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const root = pino(
    {
      level,
      base: { service: 'hookrelay' },
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: { log: redactNested },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  // A child's bindings skip `formatters.bindings` (pino swaps it out for children), so they are blanked here;
  // children are created from their parent's prototype chain and inherit this `child` too.
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, redactNested(bindings), options);
  } as typeof root.child;
  return root;
}

export type { Logger };
