import { afterEach } from 'vitest';
import { newSecret } from '../../src/delivery/signing.js';
import { accept } from '../helpers/bitbucket.js';
import { startRelay, type TestRelay, target } from '../helpers/delivery.js';
import { verifyStandardWebhook } from '../helpers/standard-webhooks.js';
import { type Script, startTargetServer, type TargetServer } from '../helpers/target-server.js';

/** A relay whose one target signs its requests (Standard Webhooks) with a fresh secret, and that secret. */
export async function startSignedRelay(
  redisUrl: string,
  targetConfig: { id: string; url: string } & Record<string, unknown>,
  overrides: Record<string, unknown> = {},
): Promise<{ relay: TestRelay; secret: string }> {
  const secret = newSecret(32);
  const { id, url, ...extra } = targetConfig;
  const relay = await startRelay(redisUrl, [target(id, url, { signingSecret: secret, ...extra })], overrides);
  return { relay, secret };
}

/**
 * Every request the relay made to `server` verifies under `secret` with the official library (a test's own
 * probes of the receiver carry no relay headers).
 */
export function verifyRelayRequests(server: TargetServer, secret: string): void {
  for (const got of server.received.filter((r) => r.headers['x-hookrelay-event'])) {
    verifyStandardWebhook(secret, got);
  }
}

/**
 * A contract test's pieces: a real relay (ingress, Redis, workers) delivering to a recording server that
 * answers as the receiver's own code does, a relay per test. Every target signs and every captured request is
 * verified, whatever else the test checks.
 */
export function contract(redisUrl: () => string) {
  const open: { close(): Promise<void> }[] = [];
  const signed: { server: TargetServer; secret: string }[] = [];
  afterEach(async () => {
    try {
      for (const { server, secret } of signed.splice(0)) verifyRelayRequests(server, secret);
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
      const { relay, secret } = await startSignedRelay(redisUrl(), { id: 't', url, ...extra });
      signed.push({ server, secret });
      open.push(relay);
      return relay;
    },
    cloud: (relay: TestRelay, eventKey: string, payload: unknown): Promise<string> =>
      accept(relay.ing.url, 'cloud', eventKey, payload),
    dc: (relay: TestRelay, eventKey: string, payload: unknown): Promise<string> =>
      accept(relay.ing.url, 'dc', eventKey, payload),
  };
}
