import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const here = resolve(import.meta.dirname);

/**
 * What would make `npm run test:unit` need more than Node: a Redis, a built dist/, the CLI or a worker as a child
 * process, haproxy or a browser. Such a test belongs in test/integration (or test/edge).
 */
const NEEDS_MORE_THAN_NODE = [
  /helpers\/(redis|redis-on-folder|cli|delivery-worker-child|ingress|delivery|admin|reactive-ci)\.js/,
  /\/(edge|faults)\/helpers\//,
  /playwright-core/,
  /['"]ioredis['"]/,
  /\bdist\//,
  /bin\/hookrelay/,
  /(spawn|exec|execFile|fork)(Sync)?\(\s*['"`][^'"`]*(redis-server|haproxy|chromium|node)\b/,
];

it('no unit test starts Redis, haproxy, a browser or the built relay', () => {
  const offenders = readdirSync(here)
    .filter((file) => file.endsWith('.ts') && file !== 'unit-suite.test.ts')
    .flatMap((file) => {
      const text = readFileSync(join(here, file), 'utf8');
      return NEEDS_MORE_THAN_NODE.filter((pattern) => pattern.test(text)).map(
        (pattern) => `${file}: ${pattern}`,
      );
    });
  expect(offenders).toEqual([]);
});
