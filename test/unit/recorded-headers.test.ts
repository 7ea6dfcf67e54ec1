import { expect, it } from 'vitest';
import { recordedHeaders } from '../../src/delivery/recorded-headers.js';

it('keeps header names and plain values, masks credentials and signatures, blanks secrets elsewhere', () => {
  const token = 'tok-0123456789abcdefghij';
  const recorded = recordedHeaders(
    {
      Authorization: `Bearer ${token}`,
      'Circle-Token': token,
      'x-hub-signature': 'sha256=abc',
      'webhook-signature': 'v1,abc',
      'Content-Type': 'application/json',
      'x-echo': `value ${token} inside`,
      'set-cookie': ['a=1', 'b=2'],
      'content-length': 42 as unknown as string,
      absent: undefined,
    },
    [token],
  );
  expect(recorded).toEqual({
    authorization: '[masked]',
    'circle-token': '[masked]',
    'x-hub-signature': '[masked]',
    'webhook-signature': '[masked]',
    'content-type': 'application/json',
    'x-echo': expect.not.stringContaining(token),
    'set-cookie': '[masked]',
    'content-length': '42',
  });
  expect(JSON.stringify(recorded)).not.toContain(token);
});

it('bounds how many headers and how much of each value it keeps', () => {
  const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-h${i}`, 'v'.repeat(1000)]));
  const recorded = recordedHeaders(many, []);
  expect(Object.keys(recorded)).toHaveLength(40);
  for (const value of Object.values(recorded)) expect(value.length).toBe(256);
});
