/**
 * A body that trickles in (one byte every 2 s) must not hold an ingress connection past the request timeout:
 * the ingress answers 408 within the timeout plus a second. Real ingress on 127.0.0.1:0, raw TCP client.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { INGRESS_REQUEST_TIMEOUT_MS } from '../../src/app.js';
import { testConfig } from '../helpers/config.js';
import { startIngress, type TestIngress } from '../helpers/ingress.js';
import { captureLogs } from '../helpers/logs.js';
import { useTestRedis } from '../helpers/redis.js';

const db = useTestRedis();
let ing: TestIngress | undefined;
afterEach(async () => {
  await ing?.close();
  ing = undefined;
});

/** Sends the head at once, then the body one byte every `everyMs`; resolves with what came back and when. */
function trickle(url: string, everyMs: number, giveUpMs: number) {
  const { hostname, port } = new URL(url);
  const body = Buffer.from(JSON.stringify({ trickled: 'x'.repeat(200) }));
  return new Promise<{ answer: string; afterMs: number }>((resolve) => {
    const socket = connect(Number(port), hostname);
    const started = Date.now();
    let answer = '';
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < body.length && socket.writable) socket.write(body.subarray(sent, ++sent));
    }, everyMs);
    const done = () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ answer, afterMs: Date.now() - started });
    };
    const giveUp = setTimeout(done, giveUpMs);
    socket.on('connect', () =>
      socket.write(
        `POST /hooks/cloud HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n` +
          `X-Event-Key: repo:push\r\nX-Request-UUID: 7e1b9a52-2d2c-4b9f-9d36-0f0e0ad1c0de\r\n` +
          `X-Hub-Signature: sha256=${'0'.repeat(64)}\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
    );
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
    });
    socket.on('close', done);
    socket.on('error', () => {
      // The server closing a socket we still write to: the answer (or its absence) is what counts.
    });
  });
}

describe('a slow body', () => {
  it('gets 408 within the request timeout plus one second, and the connection is closed', async () => {
    const logs = captureLogs();
    ing = await startIngress(testConfig(db.url), logs.log);
    const { answer, afterMs } = await trickle(ing.url, 2000, INGRESS_REQUEST_TIMEOUT_MS + 20_000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
      error: 'REQUEST_TIMEOUT',
      message: expect.any(String),
    });
    expect(afterMs).toBeLessThanOrEqual(INGRESS_REQUEST_TIMEOUT_MS + 1000);
    expect(afterMs).toBeGreaterThanOrEqual(INGRESS_REQUEST_TIMEOUT_MS - 1000);
    // The cut-off request is no crash: nothing logged as an error, and the ingress keeps serving.
    expect(logs.lines.filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect((await fetch(`${ing.url}/healthz`)).status).toBe(200);
  }, 60_000);
});
