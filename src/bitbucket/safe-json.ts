import sjson from 'secure-json-parse';

/**
 * JSON.parse without prototype pollution: `__proto__` and `constructor.prototype` keys (escaped forms too) are
 * dropped, as Fastify's own parser does. secure-json-parse scans only when the text contains such a key, so
 * the common path costs what JSON.parse costs. Depth is not limited here: V8 parses deep nesting iteratively,
 * nothing downstream recurses into the payload, and the signature is checked before any parse.
 */
export function safeJsonParse(text: string): unknown {
  return sjson.parse(text, null, { protoAction: 'remove', constructorAction: 'remove' });
}
