import { buildConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/types.js';

export const SECRETS = {
  cloud: 'cloud-secret-Gk4$wyNpQ',
  cloudOld: 'cloud-old-secret-77aa',
  dc: 'dc secret with spaces',
};

let counter = 0;

/** A full config for tests: two sources (rotation on Cloud), targets given by the test, a unique key prefix. */
export function testConfig(redisUrl: string, overrides: Record<string, unknown> = {}): Config {
  counter += 1;
  const tree = {
    redis: { url: redisUrl, prefix: `t${process.pid}x${counter}`, commandTimeout: 1000 },
    ingress: { host: '127.0.0.1', port: 0, bodyLimit: 262144 },
    sources: [
      { id: 'cloud', platform: 'cloud', secrets: [SECRETS.cloud, SECRETS.cloudOld] },
      { id: 'dc', platform: 'datacenter', secrets: [SECRETS.dc] },
    ],
    targets: [{ id: 'ci', url: 'http://127.0.0.1:9/hook' }],
    routes: [
      { source: 'cloud', targets: ['ci'] },
      { source: 'dc', targets: ['ci'] },
    ],
    log: { level: 'debug' },
    ...overrides,
  };
  return buildConfig(tree, {});
}
