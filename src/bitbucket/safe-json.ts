const MAX_DEPTH = 64;

export class JsonRejected extends Error {}

/**
 * JSON.parse that drops `__proto__` and `constructor.prototype` keys (prototype pollution) and rejects depth
 * bombs. The reviver runs only when the raw text contains a suspicious key, so the common path stays as fast
 * as JSON.parse.
 */
export function safeJsonParse(text: string): unknown {
  const suspicious = text.includes('"__proto__"') || text.includes('"constructor"') || text.includes('\\u');
  const value = suspicious
    ? JSON.parse(text, function (this: Record<string, unknown>, key, val) {
        if (key === '__proto__') return undefined;
        if (key === 'constructor' && val && typeof val === 'object' && 'prototype' in val) return undefined;
        return val;
      })
    : JSON.parse(text);
  if (depthExceeds(value, MAX_DEPTH)) throw new JsonRejected(`nesting deeper than ${MAX_DEPTH}`);
  return value;
}

function depthExceeds(root: unknown, max: number): boolean {
  // Iterative so a deep document cannot blow the stack of the checker itself.
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
