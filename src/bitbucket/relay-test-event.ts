import { randomUUID } from 'node:crypto';
import { sign } from './signature.js';

/**
 * `hookrelay bitbucket hooks test` on Cloud (which has no test endpoint of its own) posts this event to the
 * relay's public URL, through the edge, signed with the source's secret. The ingress checks the signature like
 * any webhook and then answers 200 without storing it: no target ever sees it, so it cannot start a build. The
 * key is not a Bitbucket event key, so no route or CI receiver could mistake it for one.
 */
export const RELAY_TEST_EVENT_KEY = 'hookrelay:test';

export interface RelayTestRequest {
  headers: Record<string, string>;
  body: string;
}

export function relayTestRequest(secret: string, sourceId: string, hookId?: string): RelayTestRequest {
  const body = JSON.stringify({
    hookrelay: { test: true, source: sourceId, sentAt: new Date().toISOString() },
  });
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'hookrelay-cli (bitbucket hooks test)',
      'x-event-key': RELAY_TEST_EVENT_KEY,
      'x-request-uuid': randomUUID(),
      'x-hub-signature': sign(secret, body),
      ...(hookId ? { 'x-hook-uuid': hookId } : {}),
    },
  };
}
