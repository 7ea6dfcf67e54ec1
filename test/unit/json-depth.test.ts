import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestsDeeperThan } from '../../src/bitbucket/json-depth.js';

/** The nesting depth of a parsed value, by walking it (fine for the small values generated here). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce((m: number, c) => Math.max(m, depthOf(c)), 0);
}

describe('JSON nesting depth', () => {
  it('agrees with the depth of the parsed value, strings with brackets, quotes and backslashes included', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 0, max: 12 }), (value, max) => {
        const body = Buffer.from(JSON.stringify(value));
        // Below `max` bytes a body cannot nest deeper; past it the scan decides.
        expect(nestsDeeperThan(body, max)).toBe(depthOf(value) > max && body.length > max);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds 100k levels in a field without recursing, and passes a string full of brackets', () => {
    const deep = Buffer.from(`{"toCommit":{"message":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`);
    expect(nestsDeeperThan(deep)).toBe(true);
    const text = Buffer.from(JSON.stringify({ message: `${'['.repeat(500)}\\"{{{` }));
    expect(nestsDeeperThan(text)).toBe(false);
    const justDeepEnough = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    expect(nestsDeeperThan(Buffer.from(justDeepEnough))).toBe(false);
    expect(nestsDeeperThan(Buffer.from(`[${justDeepEnough}]`))).toBe(true);
  });
});
