import { describe, expect, it } from 'vitest';
import type { RetryPolicy } from '../../src/config/types.js';
import { backoffDelay, parseRetryAfter, retryDelay } from '../../src/delivery/backoff.js';
import { classifyStatus, describeError } from '../../src/delivery/classify.js';
import { excerpt } from '../../src/delivery/http-client.js';
import { standardWebhookHeaders } from '../../src/delivery/signing.js';

const policy: RetryPolicy = {
  attempts: 10,
  delay: 1000,
  maxDelay: 60_000,
  maxRetryAfter: 120_000,
  maxAge: 86_400_000,
};

describe('backoff', () => {
  it('full jitter: uniform in [0, min(maxDelay, delay·2^(n-1))]', () => {
    expect(backoffDelay(policy, 1, () => 0.999)).toBe(999);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(2000);
    expect(backoffDelay(policy, 30, () => 0.999)).toBe(59_940);
    expect(backoffDelay(policy, 4, () => 0)).toBe(0);
  });

  it('an explicit schedule is used as written and its last entry repeats', () => {
    const s = { ...policy, schedule: [5000, 30_000, 300_000] };
    expect([1, 2, 3, 4, 9].map((n) => backoffDelay(s, n))).toEqual([5000, 30_000, 300_000, 300_000, 300_000]);
  });

  it('Retry-After in seconds or as an HTTP date, clamped to maxRetryAfter', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(retryDelay(policy, 1, 5000)).toBe(5000);
    expect(retryDelay(policy, 1, 86_400_000)).toBe(120_000);
  });
});

describe('classification', () => {
  it('2xx done; 408, 425, 429 and 5xx retry; other 4xx and 3xx are permanent with the status as reason', () => {
    expect(classifyStatus('http', 204)).toEqual({ kind: 'delivered' });
    for (const s of [408, 425, 429, 500, 502, 503, 504]) expect(classifyStatus('http', s).kind).toBe('retry');
    for (const s of [301, 302, 400, 401, 403, 404, 410, 422]) {
      expect(classifyStatus('http', s)).toEqual({ kind: 'permanent', reason: `status ${s}` });
    }
  });

  it('jenkins-generic: 404 (no job) is permanent and 500 is not retried blindly (it may have fired)', () => {
    expect(classifyStatus('jenkins-generic', 404)).toEqual({ kind: 'permanent', reason: 'status 404' });
    expect(classifyStatus('jenkins-generic', 500)).toEqual({
      kind: 'permanent',
      reason: 'status 500, may have fired',
    });
    expect(classifyStatus('jenkins-generic', 503).kind).toBe('retry');
  });

  it('names transport errors without detail that could leak', () => {
    expect(describeError({ code: 'UND_ERR_HEADERS_TIMEOUT' })).toBe('timeout');
    expect(describeError(new DOMException('x', 'TimeoutError'))).toBe('timeout');
    expect(describeError({ code: 'ECONNREFUSED' })).toBe('connection refused');
    expect(describeError({ code: 'UND_ERR_SOCKET' })).toBe('connection reset');
  });
});

describe('standard webhooks signature', () => {
  it('matches the reference vector of the specification', () => {
    const h = standardWebhookHeaders(
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      Buffer.from('{"test": 2432232314}'),
      1614265330,
    );
    expect(h).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    });
  });
});

describe('dead-letter excerpts', () => {
  it('are short, printable and carry no configured secret or token-looking value', () => {
    const text = `error: bad token s3cr3t-value-123 Authorization: Bearer abcdefghijklmnop\u0007 {"password":"hunter2"} ${'x'.repeat(2000)}`;
    const out = excerpt(text, ['s3cr3t-value-123']);
    expect(out.length).toBeLessThanOrEqual(512);
    expect(out).not.toContain('s3cr3t-value-123');
    expect(out).not.toContain('abcdefghijklmnop');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('\u0007');
  });
});
