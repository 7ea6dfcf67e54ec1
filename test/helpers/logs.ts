import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

/** A real pino logger whose lines the test reads back as objects (and as raw text, for secret scans). */
export function captureLogs(level = 'debug'): {
  log: Logger;
  lines: Record<string, unknown>[];
  raw: () => string;
} {
  const chunks: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = chunk.toString();
      chunks.push(text);
      for (const line of text.split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { log: createLogger(level, stream), lines, raw: () => chunks.join('') };
}
