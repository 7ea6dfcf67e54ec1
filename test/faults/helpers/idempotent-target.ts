import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A CI target that behaves like a well-built idempotent one: the first request with an Idempotency-Key is
 * processed (counted, answered 2xx), every later copy of that key is answered `200 {"duplicate":true}` and
 * counted as a duplicate. A key counts as processed on arrival — a real CI would have started the build even if
 * the relay never read the answer (a worker killed mid-request).
 */
export interface KeyRecord {
  /** X-Hookrelay-Event of the first copy. */
  event: string;
  /** Every request with this key, including the ones answered 503 while down. */
  copies: number;
  /** Copies answered 2xx after the first (idempotent duplicates). */
  duplicates: number;
  /** Copies answered 503 because the target was down. */
  refused: number;
  /** Whether one copy was processed (2xx); exactly once by construction, at most once by definition. */
  processed: boolean;
  /** X-Hookrelay-Attempt of every copy, in arrival order. */
  attempts: string[];
  /** A copy whose X-Hookrelay-Event disagreed with the first (must never happen). */
  eventMismatch: boolean;
}

export interface IdempotentTarget {
  url: string;
  port: number;
  keys: Map<string, KeyRecord>;
  /** Keys of requests whose connection closed before the answer was written (the sender died). */
  aborted: Set<string>;
  /** Requests currently being answered (arrived, answer not yet written). */
  inFlight(): number;
  /** The most requests ever in flight at once, per request path (one path per target). */
  peakInFlight: Map<string, number>;
  /** The keys being answered right now, with the sender's port (to tell which process sent them). */
  inFlightKeys(): { key: string; remotePort: number }[];
  /** `up`: answer (after delayMs); `down`: 503 to everything. */
  mode: 'up' | 'down';
  delayMs: number;
  processedCount(): number;
  duplicateCount(): number;
  close(): Promise<void>;
}

export async function startIdempotentTarget(o: { delayMs?: number } = {}): Promise<IdempotentTarget> {
  const keys = new Map<string, KeyRecord>();
  const aborted = new Set<string>();
  let inFlight = 0;
  const byPath = new Map<string, number>();
  const peakInFlight = new Map<string, number>();
  const pending = new Set<{ key: string; remotePort: number }>();
  const server: Server = createServer((req, res) => {
    const key = String(req.headers['idempotency-key'] ?? '');
    const event = String(req.headers['x-hookrelay-event'] ?? '');
    const attempt = String(req.headers['x-hookrelay-attempt'] ?? '');
    req.resume();
    req.on('end', () => {
      let rec = keys.get(key);
      if (!rec) {
        rec = {
          event,
          copies: 0,
          duplicates: 0,
          refused: 0,
          processed: false,
          attempts: [],
          eventMismatch: false,
        };
        keys.set(key, rec);
      }
      rec.copies += 1;
      rec.attempts.push(attempt);
      if (rec.event !== event) rec.eventMismatch = true;
      if (target.mode === 'down') {
        rec.refused += 1;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        return;
      }
      let body: string;
      if (rec.processed) {
        rec.duplicates += 1;
        body = '{"duplicate":true}';
      } else {
        rec.processed = true;
        body = '{"ok":true}';
      }
      inFlight += 1;
      const path = req.url ?? '';
      byPath.set(path, (byPath.get(path) ?? 0) + 1);
      peakInFlight.set(path, Math.max(peakInFlight.get(path) ?? 0, byPath.get(path)!));
      const entry = { key, remotePort: req.socket.remotePort ?? 0 };
      pending.add(entry);
      let answered = false;
      res.on('close', () => {
        inFlight -= 1;
        byPath.set(path, byPath.get(path)! - 1);
        pending.delete(entry);
        if (!answered) aborted.add(key);
      });
      const answer = () => {
        pending.delete(entry);
        if (res.destroyed) return;
        answered = true;
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      };
      if (target.delayMs > 0) setTimeout(answer, target.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const target: IdempotentTarget = {
    url: `http://127.0.0.1:${port}`,
    port,
    keys,
    aborted,
    inFlight: () => inFlight,
    peakInFlight,
    inFlightKeys: () => [...pending],
    mode: 'up',
    delayMs: o.delayMs ?? 0,
    processedCount: () => [...keys.values()].filter((k) => k.processed).length,
    duplicateCount: () => [...keys.values()].reduce((n, k) => n + k.duplicates, 0),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  return target;
}
