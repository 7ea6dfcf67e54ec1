import sjson from 'secure-json-parse';

/**
 * JSON.parse without prototype pollution: `__proto__` and `constructor.prototype` keys (escaped forms too) are
 * dropped, as Fastify's own parser does. secure-json-parse scans only when the text contains such a key, so
 * the common path costs what JSON.parse costs. Depth is bounded before the parse (json-depth.ts), and the
 * signature is checked before either.
 */
export function safeJsonParse(text: string): unknown {
  return sjson.parse(text, null, { protoAction: 'remove', constructorAction: 'remove' });
}
