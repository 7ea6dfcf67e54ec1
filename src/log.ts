import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Paths that must never reach a log line even if someone logs a request or job by mistake: secrets,
 * signatures, tokens, Authorization headers and payload bodies.
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
  '*.token',
  '*.secret',
  '*.secrets',
  '*.password',
  '*.clientSecret',
  '*.signingSecret',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'hookrelay' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
