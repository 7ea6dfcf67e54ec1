import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the CI target saw it: exact body bytes and headers. */
export interface Received {
  n: number;
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  at: number;
}

/** How the target answers one request. `hang`: never answer (until the server closes). */
export interface Behaviour {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  hang?: boolean;
}

export type Script = (req: Received) => Behaviour | Promise<Behaviour>;

export interface TargetServer {
  url: string;
  received: Received[];
  /** Answers for the next requests, in order; after them the script (default 200) answers. */
  next(...behaviours: Behaviour[]): void;
  script(fn: Script): void;
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/**
 * A real HTTP server on 127.0.0.1:0 standing in for a CI system, scripted by the test: fail N times, hang past
 * the timeout, answer 429 with Retry-After, 410, slowly, … It records every request it gets.
 */
export async function startTargetServer(initial?: Script): Promise<TargetServer> {
  const received: Received[] = [];
  const queued: Behaviour[] = [];
  let fallback: Script = initial ?? (() => ({ status: 200, body: 'ok' }));
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const rec: Received = {
        n: received.length + 1,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        at: Date.now(),
      };
      received.push(rec);
      const b = queued.shift() ?? (await fallback(rec));
      if (b.hang) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(b.status ?? 200, { 'content-type': 'text/plain', ...b.headers });
        res.end(b.body ?? '');
      };
      if (b.delayMs) setTimeout(answer, b.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    next: (...b) => queued.push(...b),
    script: (fn) => {
      fallback = fn;
    },
    waitFor: (count, timeoutMs = 20_000) =>
      waitUntil(() => received.length >= count, timeoutMs, `${count} requests at the target`).then(
        () => received,
      ),
    close: () =>
      new Promise<void>((res) => {
        for (const r of hanging) r.destroy();
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}

/** Poll a condition (no sleeps as assertions): resolves once it holds, rejects after the timeout. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
