import { describe, expect, it } from 'vitest';
import { LoginThrottle } from '../../src/admin/login-throttle.js';
import { safeNextPath } from '../../src/admin/next-path.js';

describe('LoginThrottle', () => {
  const limits = { perAddress: 3, global: 5, windowMs: 60_000 };

  it('holds an address back after its limit, until its window has passed', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(limits, () => now);
    for (let i = 0; i < 3; i += 1) {
      expect(throttle.retryAfter('a')).toBe(0);
      throttle.fail('a');
    }
    expect(throttle.retryAfter('a')).toBe(60);
    expect(throttle.retryAfter('b')).toBe(0);
    now += 45_000;
    expect(throttle.retryAfter('a')).toBe(15);
    now += 15_000;
    expect(throttle.retryAfter('a')).toBe(0);
  });

  it('holds everyone back after the global limit, except for the per-address-only question', () => {
    const now = 5_000;
    const throttle = new LoginThrottle(limits, () => now);
    for (const address of ['a', 'b', 'c', 'd', 'e']) throttle.fail(address);
    expect(throttle.retryAfter('f')).toBe(60);
    expect(throttle.retryAfter('f', { global: false })).toBe(0);
  });
});

describe('safeNextPath', () => {
  it.each([
    '//evil.example',
    '/\\evil.example',
    '/\t/evil.example',
    '/\u0000',
    '/\u007f',
    '/\u009b',
    '/a b',
    'evil',
    'https://evil.example',
    '',
  ])('refuses %j', (next) => {
    expect(safeNextPath(next, '/admin')).toBeUndefined();
    expect(safeNextPath(next, '')).toBeUndefined();
  });

  it('keeps a path of this origin, query included', () => {
    expect(safeNextPath('/console/events?state=dead', '/admin')).toBe('/console/events?state=dead');
    expect(safeNextPath('/%09/x', '')).toBe('/%09/x');
    expect(safeNextPath(42, '')).toBeUndefined();
  });
});
