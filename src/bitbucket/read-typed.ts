/**
 * Typed reads of a parsed payload. Every field the relay reads goes through one of these where it is read: a
 * value of another type is never used (so nothing downstream can trip over a number where a string belongs,
 * or recurse into a nested array), and the first such field is noted so the ingress can quarantine the event.
 * `null` is absent: Bitbucket sends it for many optional fields. `where` names the field for ops.
 */

/** The first field that had an unexpected type, if any. */
export interface TypeProblems {
  first?: string;
}

type Obj = Record<string, unknown>;

function note(problems: TypeProblems, where: string, expected: string): undefined {
  if (problems.first === undefined) problems.first = `${where}: must be ${expected}`;
  return undefined;
}

export function readObject(problems: TypeProblems, value: unknown, where: string): Obj | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' && !Array.isArray(value)) return value as Obj;
  return note(problems, where, 'an object');
}

export function readString(problems: TypeProblems, value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return note(problems, where, 'a string');
}

export function readInteger(problems: TypeProblems, value: unknown, where: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (Number.isSafeInteger(value)) return value as number;
  return note(problems, where, 'an integer');
}

/** Data Center user ids are numbers; a string is read as it is. */
export function readId(problems: TypeProblems, value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Number.isSafeInteger(value)) return String(value);
  return note(problems, where, 'a string or an integer');
}

export function readBoolean(problems: TypeProblems, value: unknown, where: string): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'boolean') return value;
  note(problems, where, 'a boolean');
  return false;
}

const NONE: readonly unknown[] = [];

export function readArray(problems: TypeProblems, value: unknown, where: string): readonly unknown[] {
  if (value === undefined || value === null) return NONE;
  if (Array.isArray(value)) return value;
  note(problems, where, 'an array');
  return NONE;
}
