import { defineConfig } from 'vitest/config';

// `npm run test:unit`: pure logic, nothing but Node (no Redis, no build, no haproxy or browser;
// test/unit/unit-suite.test.ts keeps it so). Files share one module graph instead of importing the relay
// afresh each (most of the run was those imports): a unit test must leave no state behind, which pure logic
// does not.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    pool: 'threads',
    isolate: false,
    reporters: ['default'],
  },
});
