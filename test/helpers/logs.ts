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

/**
 * The top-level keys of one JSON line in the order written, duplicates kept: JSON.parse silently keeps the
 * last of two equal keys, so a line that says `"role"` twice looks fine once parsed.
 */
export function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i];
    if (ch === '"') {
      let end = i + 1;
      while (line[end] !== '"') end += line[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(line.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (ch === '{' || ch === '[') {
      depth += 1;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth -= 1;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

export function duplicateKeys(line: string): string[] {
  const keys = topLevelKeys(line);
  return keys.filter((key, i) => keys.indexOf(key) !== i);
}
