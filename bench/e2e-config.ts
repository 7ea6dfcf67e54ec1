import { buildConfig } from '../src/config/load-config.js';
import type { Config } from '../src/config/types.js';

/**
 * The hookrelay side of the end-to-end benches, one config for all of them so their figures compare: one Cloud
 * source, one `http` target with a signing secret, and every guard on. The per-ref limit is set high because
 * the benches push thousands of times to one branch on purpose (the check still runs for each delivery).
 */
export function e2eRelayConfig(o: {
  redisUrl: string;
  prefix: string;
  targetUrl: string;
  secret: string;
  concurrency: number;
  logLevel: string;
}): Config {
  return buildConfig(
    {
      redis: { url: o.redisUrl, prefix: o.prefix },
      ingress: { host: '127.0.0.1', port: 0 },
      sources: [{ id: 'cloud', platform: 'cloud', secrets: [o.secret] }],
      targets: [
        {
          id: 'ci',
          url: o.targetUrl,
          concurrency: o.concurrency,
          signingSecret: 'whsec_YmVuY2gtc2lnbmluZy1zZWNyZXQtb2YtMzItYnl0ZXM=',
        },
      ],
      routes: [{ source: 'cloud', targets: ['ci'] }],
      loop: {
        ignoreActors: ['ci-bot*', '*@ci.example.test'],
        maxTriggersPerRef: { count: 1_000_000, window: '10m' },
        collapseMergePush: true,
      },
      log: { level: o.logLevel },
    },
    {},
  );
}
