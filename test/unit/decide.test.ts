import { describe, expect, it } from 'vitest';
import type { TargetConfig } from '../../src/config/types.js';
import { classifyError, classifyStatus } from '../../src/delivery/classify.js';
import {
  type AttemptFacts,
  type Decision,
  decide,
  retryDelayAfter,
  type SendOutcome,
} from '../../src/delivery/decide.js';
import { RetryLater } from '../../src/errors/index.js';

const NOW = Date.parse('2026-03-02T10:00:00Z');
const HOUR = 3_600_000;

const target: Pick<TargetConfig, 'type' | 'retry'> = {
  type: 'http',
  retry: { attempts: 5, delay: 1000, maxDelay: 60_000, maxRetryAfter: HOUR, maxAge: 24 * HOUR },
};

/** The second of five attempts of an event received a minute ago; the jitter at its top (the full cap). */
const attempt = (over: Partial<AttemptFacts> = {}): AttemptFacts => ({
  number: 2,
  limit: 5,
  manual: false,
  receivedAt: NOW - 60_000,
  now: NOW,
  random: () => 0.999_999,
  ...over,
});

const answered = (status: number, headers: Record<string, string> = {}): SendOutcome => ({
  kind: 'sent',
  verdict: classifyStatus(target.type, status, { headers, bodyStart: '' }),
  answer: { status, headers },
});

const failed = (err: unknown): SendOutcome => ({ kind: 'sent', verdict: classifyError(target.type, err) });

// Backoff of the second attempt with the jitter at its top: min(maxDelay, delay·2^(2-1)) = 2000, floored.
const BACKOFF = Math.floor(0.999_999 * 2000);

const table: [string, SendOutcome, AttemptFacts, Decision][] = [
  ['200', answered(200), attempt(), { kind: 'delivered' }],
  ['204', answered(204), attempt(), { kind: 'delivered' }],
  ['301: redirects are not followed', answered(301), attempt(), { kind: 'dead', reason: 'status 301' }],
  ['304', answered(304), attempt(), { kind: 'dead', reason: 'status 304' }],
  ['400', answered(400), attempt(), { kind: 'dead', reason: 'status 400' }],
  ['404', answered(404), attempt(), { kind: 'dead', reason: 'status 404' }],
  ['410', answered(410), attempt(), { kind: 'dead', reason: 'status 410' }],
  [
    '408 with Retry-After: 30',
    answered(408, { 'retry-after': '30' }),
    attempt(),
    { kind: 'retry', delayMs: 30_000, reason: 'status 408' },
  ],
  [
    '425 with Retry-After as an HTTP date',
    answered(425, { 'retry-after': new Date(NOW + 90_000).toUTCString() }),
    attempt(),
    { kind: 'retry', delayMs: 90_000, reason: 'status 425' },
  ],
  [
    '429 with Retry-After: 120',
    answered(429, { 'retry-after': '120' }),
    attempt(),
    { kind: 'retry', delayMs: 120_000, reason: 'status 429' },
  ],
  [
    '429 with a Retry-After past maxRetryAfter: clamped',
    answered(429, { 'retry-after': String(5 * 3600) }),
    attempt(),
    { kind: 'retry', delayMs: HOUR, reason: 'status 429' },
  ],
  [
    '429 without Retry-After: the backoff',
    answered(429),
    attempt(),
    { kind: 'retry', delayMs: BACKOFF, reason: 'status 429' },
  ],
  ['500', answered(500), attempt(), { kind: 'retry', delayMs: BACKOFF, reason: 'status 500' }],
  ['503', answered(503), attempt(), { kind: 'retry', delayMs: BACKOFF, reason: 'status 503' }],
  ['508: a relay loop', answered(508), attempt(), { kind: 'dead', reason: 'relay loop (508)' }],
  [
    'connection refused',
    failed({ code: 'ECONNREFUSED' }),
    attempt(),
    { kind: 'retry', delayMs: BACKOFF, reason: 'connection refused' },
  ],
  [
    'timeout',
    failed(new DOMException('late', 'TimeoutError')),
    attempt(),
    { kind: 'retry', delayMs: BACKOFF, reason: 'timeout' },
  ],
  [
    '500 on the last attempt',
    answered(500),
    attempt({ number: 5 }),
    { kind: 'dead', reason: 'max attempts' },
  ],
  [
    '429 whose Retry-After lands past the maximum age',
    answered(429, { 'retry-after': '600' }),
    attempt({ receivedAt: NOW - 24 * HOUR + 60_000 }),
    { kind: 'dead', reason: 'max age' },
  ],
  [
    '500 on an operator replay: one try',
    answered(500),
    attempt({ manual: true }),
    { kind: 'dead', reason: 'status 500' },
  ],
  [
    'a replay of an event older than the maximum age, delivered',
    answered(200),
    attempt({ manual: true, receivedAt: NOW - 48 * HOUR }),
    { kind: 'delivered' },
  ],
  [
    'nothing to send',
    { kind: 'nothing-to-send', reason: 'branch deleted' },
    attempt(),
    { kind: 'not-applicable', reason: 'branch deleted' },
  ],
];

describe('decide', () => {
  it.each(table)('%s', (_name, outcome, facts, expected) => {
    expect(decide(outcome, facts, target)).toEqual(expected);
  });

  it('a trigger API that timed out after sending may have started a build: dead, not retried', () => {
    const outcome: SendOutcome = {
      kind: 'sent',
      verdict: classifyError('gitlab-trigger', new DOMException('late', 'TimeoutError')),
    };
    expect(decide(outcome, attempt(), { ...target, type: 'gitlab-trigger' })).toEqual({
      kind: 'dead',
      reason: 'timeout, may have fired',
    });
  });

  it('an explicit schedule sets the delay of each retry', () => {
    const scheduled = { ...target, retry: { ...target.retry, schedule: [5000, 30_000] } };
    expect(decide(answered(502), attempt({ number: 1 }), scheduled)).toMatchObject({ delayMs: 5000 });
    expect(decide(answered(502), attempt({ number: 3 }), scheduled)).toMatchObject({ delayMs: 30_000 });
  });
});

describe('the backoff hook BullMQ calls', () => {
  it('returns the delay decide() chose, and the policy backoff for any other failure', () => {
    const scheduled = { retry: { ...target.retry, schedule: [7000] } };
    expect(retryDelayAfter(scheduled, 2, new RetryLater('status 429', 120_000))).toBe(120_000);
    expect(retryDelayAfter(scheduled, 2, new Error('Connection is closed.'))).toBe(7000);
  });
});
