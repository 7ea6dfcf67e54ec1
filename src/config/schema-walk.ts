/**
 * What the loader does with a config tree by following the schema beside it: move keys that were renamed
 * (a schema entry's `replaces`) and turn validated values into their in-memory form (TypeBox transforms:
 * durations into milliseconds, `host:port` into objects).
 */

import { TransformKind, type TSchema } from '@sinclair/typebox';

type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every object and array schema below: properties by name, array items. */
function children(schema: TSchema, value: unknown, path: string): [TSchema, unknown, string, Tree | null][] {
  if (Array.isArray(value) && schema.items) {
    return value.map((item, i) => [schema.items as TSchema, item, `${path}[${i}]`, null]);
  }
  if (isTree(value) && schema.properties) {
    return Object.entries(schema.properties as Record<string, TSchema>).map(([key, property]) => [
      property,
      value[key],
      path ? `${path}.${key}` : key,
      value,
    ]);
  }
  return [];
}

export interface ReplacedKey {
  /** Where the file has the old key, e.g. `targets[0].timeoutMs`. */
  oldPath: string;
  /** Where it now is, e.g. `targets[0].timeout`. */
  newPath: string;
}

/**
 * Rename every old key the file still uses to its replacement, in place, converting its plain number from the
 * old key's unit (`…Ms`, `…Seconds`) into milliseconds. A file that sets both reports it as a problem.
 */
export function moveReplacedKeys(
  schema: TSchema,
  tree: unknown,
  problems: string[],
  path = '',
): ReplacedKey[] {
  const moved: ReplacedKey[] = [];
  for (const [child, value, at, holder] of children(schema, tree, path)) {
    const oldKey = child.replaces as string | undefined;
    if (holder && oldKey !== undefined && oldKey in holder) {
      const newKey = at.slice(at.lastIndexOf('.') + 1);
      const oldPath = path ? `${path}.${oldKey}` : oldKey;
      if (newKey in holder) {
        problems.push(`${oldPath}: replaced by ${newKey}; set only ${newKey}`);
        delete holder[oldKey]; // reported above, not again as an unknown key
        continue;
      }
      const old = holder[oldKey];
      const unit = oldKey.endsWith('Seconds') ? 1000 : 1;
      holder[newKey] = typeof old === 'number' ? old * unit : old;
      delete holder[oldKey];
      moved.push({ oldPath, newPath: at });
      continue;
    }
    if (value !== undefined) moved.push(...moveReplacedKeys(child, value, problems, at));
  }
  return moved;
}

/** The in-memory form of a tree that has passed the schema: each TypeBox transform's Decode, innermost first. */
export function decodeTree(schema: TSchema, value: unknown): unknown {
  let decoded = value;
  if (Array.isArray(value) && schema.items) {
    decoded = value.map((item) => decodeTree(schema.items as TSchema, item));
  } else if (isTree(value) && schema.properties) {
    const properties = schema.properties as Record<string, TSchema>;
    decoded = Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        properties[key] ? decodeTree(properties[key], item) : item,
      ]),
    );
  }
  const transform = (schema as { [TransformKind]?: { Decode: (value: unknown) => unknown } })[TransformKind];
  return transform ? transform.Decode(decoded) : decoded;
}
