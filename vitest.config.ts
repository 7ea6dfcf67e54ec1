import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/unit/**/*.test.ts',
      'test/integration/**/*.test.ts',
      'test/contract/**/*.test.ts',
      'test/edge/**/*.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two cores: each file starts its own redis-server and servers; more parallel files only add noise.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
