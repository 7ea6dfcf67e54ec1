import { afterEach } from 'vitest';
import { newSecret } from '../../src/delivery/signing.js';
import { accept } from '../helpers/bitbucket.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { verifyStandardWebhook } from '../helpers/standard-webhooks.js';
import { type Script, startTargetServer, type TargetServer } from '../helpers/target-server.js';

/**
 * A contract test's pieces: a real relay (ingress, Redis, workers) delivering to a recording server that
 * answers as the receiver's own code does. Every target signs (Standard Webhooks) and every captured request is
 * verified with the official library, whatever else the test checks.
 */
export function contract(redisUrl: () => string) {
  const open: { close(): Promise<void> }[] = [];
  const signed: { server: TargetServer; secret: string }[] = [];
  afterEach(async () => {
    try {
      for (const { server, secret } of signed.splice(0)) {
        // The relay's requests (a test's own probes of the receiver carry no relay headers).
        for (const got of server.received.filter((r) => r.headers['x-hookrelay-event'])) {
          verifyStandardWebhook(secret, got);
        }
      }
    } finally {
      for (const o of open.splice(0).reverse()) await o.close();
    }
  });
  return {
    async receiver(script: Script): Promise<TargetServer> {
      const server = await startTargetServer(script);
      open.push(server);
      return server;
    },
    /** A relay with one signed target of the given type at `url`. */
    async relay(server: TargetServer, url: string, extra: Record<string, unknown>): Promise<TestRelay> {
      const secret = newSecret(32);
      signed.push({ server, secret });
      const relay = await startRelay(redisUrl(), [
        target('t', url, {
          signingSecret: secret,
          retry: { attempts: 4, delay: 50, maxDelay: 200 },
          ...extra,
        }),
      ]);
      open.push(relay);
      return relay;
    },
    cloud: (relay: TestRelay, eventKey: string, payload: unknown): Promise<string> =>
      accept(relay.ing.url, 'cloud', eventKey, payload),
    dc: (relay: TestRelay, eventKey: string, payload: unknown): Promise<string> =>
      accept(relay.ing.url, 'dc', eventKey, payload),
  };
}
