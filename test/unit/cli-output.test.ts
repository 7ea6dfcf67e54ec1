import { afterEach, describe, expect, it, vi } from 'vitest';
import { print, printable, table } from '../../src/cli/output.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function captured(run: () => void): string {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  run();
  return out;
}

describe('human output', () => {
  it('printable escapes C0, DEL and C1 controls, newlines included, and nothing else', () => {
    expect(printable('a\u001b[31mb\u009bc\u007fd\ne\tf')).toBe(
      'a\\u001b[31mb\\u009bc\\u007fd\\u000ae\\u0009f',
    );
    expect(printable('feature/ünïcode ✓ 日本')).toBe('feature/ünïcode ✓ 日本');
  });

  it('print keeps its own line breaks and escapes every other control character', () => {
    expect(captured(() => print('one\u001b]0;title\u0007\ntwo\r'))).toBe(
      'one\\u001b]0;title\\u0007\ntwo\\u000d\n',
    );
  });

  it('table cells cannot break the layout or carry escapes', () => {
    const out = captured(() => print(table(['name', 'ref'], [['a\nb', '\u009b2J']])));
    expect(out.split('\n')).toEqual([`${'NAME'.padEnd(8)}  REF`, 'a\\u000ab  \\u009b2J', '']);
  });
});
