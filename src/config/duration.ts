import { Type } from '@sinclair/typebox';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = '^\\d+(ms|s|m|h|d)$';

/**
 * The schema keyword that marks a duration. ajv checks its range (load-config.ts) and error messages read it;
 * the transform below turns the value into milliseconds once the tree is valid.
 */
export const DURATION_KEYWORD = 'duration';

export interface DurationRange {
  /** Milliseconds. */
  minimum?: number;
  /** Milliseconds. */
  maximum?: number;
}

export interface DurationOptions extends DurationRange {
  default?: number | string;
  /**
   * The key this one replaced, which still works with a deprecation warning: its name ends in `Ms` or
   * `Seconds`, the unit of its plain number.
   */
  replaces?: string;
}

/** "5s" → 5000; a number is already milliseconds. The schema has checked the shape. */
export function toMs(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!match) throw new Error(`not a duration: ${value}`);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** 1500 → "1500ms", 60000 → "1m": the largest unit that divides the value, for messages. */
export function formatMs(ms: number): string {
  const units = Object.entries(UNIT_MS).reverse();
  const [unit, size] = units.find(([, size]) => ms > 0 && ms % size === 0) ?? ['ms', 1];
  return `${ms / size}${unit}`;
}

/**
 * A duration key: milliseconds as a number, or a string with a unit ("500ms", "10s", "5m", "1h", "1d"). The
 * file says either; the loaded Config holds milliseconds.
 */
export function Duration(options: DurationOptions = {}) {
  const { minimum, maximum, replaces, default: fallback } = options;
  const range: DurationRange = {
    ...(minimum !== undefined ? { minimum } : {}),
    ...(maximum !== undefined ? { maximum } : {}),
  };
  const shape = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    [DURATION_KEYWORD]: range,
    ...(fallback !== undefined ? { default: fallback } : {}),
    ...(replaces !== undefined ? { replaces } : {}),
  });
  return Type.Transform(shape)
    .Decode((value): number => toMs(value))
    .Encode((ms): number | string => ms);
}
