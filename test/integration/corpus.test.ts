import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../../src/bitbucket/signature.js';
import { type CorpusEntry, readBody, readManifest } from '../fixtures/bitbucket/corpus/corpus.js';
import { type Answer, send } from '../helpers/bitbucket.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { useTestRedis } from '../helpers/redis.js';
import { routed as decisionOf, type Routed } from '../helpers/routed.js';
import { startTargetServer, type TargetServer, waitUntil } from '../helpers/target-server.js';

/**
 * Every real body of the corpus (test/fixtures/bitbucket/corpus, see SOURCES.md there), signed and sent with the
 * headers its platform really sends, must be accepted and reach the CI target byte for byte: once the signature
 * verifies, nothing authentic is refused or dropped for its shape.
 *
 * Each body gets its own source (and so its own dedupe keys): several captures repeat the same ref move, and each
 * must be judged alone, as it was when a live server sent it.
 */
const entries = readManifest();
const redis = useTestRedis();

// Headers as the live servers send them (see /work/shared/BITBUCKET.md and the captures' own test code):
// Cloud adds X-Request-UUID, X-Hook-UUID and X-Attempt-Number; Data Center sends X-Request-Id and a charset.
function headersFor(
  entry: CorpusEntry,
  body: Buffer,
  secret: string,
  deliveryId: string,
): Record<string, string> {
  const signature = entry.signature?.header ?? sign(secret, body);
  if (entry.platform === 'cloud') {
    return {
      'content-type': 'application/json',
      'user-agent': 'Bitbucket-Webhooks/2.0',
      'x-event-key': entry.eventKey,
      'x-request-uuid': deliveryId,
      'x-hook-uuid': '{8e2f45c6-0b1d-4a7e-9c3f-5d6b7a8e9f01}',
      'x-attempt-number': '1',
      'x-hub-signature': signature,
    };
  }
  return {
    'content-type': 'application/json; charset=UTF-8',
    'user-agent': 'Atlassian HttpClient 4.0.0 / Bitbucket-9.4.2 (9004002) / Default',
    'x-event-key': entry.eventKey,
    'x-request-id': deliveryId,
    'x-hub-signature': signature,
  };
}

interface Sent {
  entry: CorpusEntry;
  body: Buffer;
  deliveryId: string;
  answer: Answer;
  /** The fan-out's decision on an accepted body. */
  decision?: Routed;
}

describe('real-payload corpus', () => {
  let ci: TargetServer;
  let relay: TestRelay;
  const sent: Sent[] = [];

  beforeAll(async () => {
    ci = await startTargetServer();
    const sources = entries.map((entry, index) => ({
      id: `corpus${index}`,
      platform: entry.platform,
      secrets: [entry.signature?.secret ?? `corpus-secret-${index}-${randomUUID()}`],
    }));
    relay = await startRelay(redis.url, [target('ci', `${ci.url}/build`)], {
      sources,
      routes: sources.map((s) => ({ source: s.id, events: ['*'], repos: ['*'], targets: ['ci'] })),
    });
    for (const [index, entry] of entries.entries()) {
      const body = readBody(entry);
      const source = sources[index]!;
      const deliveryId = randomUUID();
      const req = { body, headers: headersFor(entry, body, source.secrets[0]!, deliveryId) };
      sent.push({ entry, body, deliveryId, answer: await send(relay.ing.url, source.id, req) });
    }
    for (const s of sent) {
      if (s.answer.status === 202) s.decision = await decisionOf(relay.ing, String(s.answer.json.id));
    }
  }, 120_000);

  afterAll(async () => {
    await relay?.close();
    await ci?.close();
  });

  it('holds at least 120 bodies of both platforms', () => {
    expect(entries.length).toBeGreaterThanOrEqual(120);
    expect(entries.some((e) => e.platform === 'cloud')).toBe(true);
    expect(entries.some((e) => e.platform === 'datacenter')).toBe(true);
  });

  it('accepts every body: 202 routed to the target (200 for a ping)', () => {
    const wrong = sent
      .filter(({ entry, answer, decision }) =>
        entry.eventKey === 'diagnostics:ping'
          ? answer.status !== 200
          : answer.status !== 202 || !decision?.targets.includes('ci'),
      )
      .map(
        ({ entry, answer, decision }) =>
          `${entry.file} (${entry.eventKey}): ${answer.status} ${JSON.stringify(answer.json)} ${JSON.stringify(decision)}`,
      );
    expect(wrong).toEqual([]);
  });

  it('delivers every accepted body to the target byte-exact, with its delivery id', async () => {
    const expected = sent.filter(({ entry }) => entry.eventKey !== 'diagnostics:ping');
    const byDeliveryId = () =>
      new Map(ci.received.map((r) => [String(r.headers['x-request-uuid'] ?? r.headers['x-request-id']), r]));
    // Poll until every body the relay routed to the target has arrived (one it did not route cannot arrive),
    // then name every body that is missing or differs.
    const routed = expected.filter(({ decision }) => decision?.targets.includes('ci'));
    await waitUntil(
      () => routed.every((s) => byDeliveryId().has(s.deliveryId)),
      90_000,
      `${routed.length} routed bodies at the target`,
      100,
    ).catch(() => undefined);
    const received = byDeliveryId();
    const wrong = expected
      .filter(({ body, deliveryId }) => !received.get(deliveryId)?.body.equals(body))
      .map(({ entry, deliveryId }) =>
        received.has(deliveryId)
          ? `${entry.file}: bytes differ`
          : `${entry.file} (${entry.eventKey}): not delivered`,
      );
    expect(wrong).toEqual([]);
  }, 120_000);
});
