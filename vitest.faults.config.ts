import { defineConfig } from 'vitest/config';

/**
 * The fault suite (`npm run test:faults`): real redis-server/sentinel, `hookrelay ingress|worker` child
 * processes and a local target, all on loopback. One file at a time: each case already runs several processes
 * on a 2-core machine, and a parallel file would only make the cases slower and noisier.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
