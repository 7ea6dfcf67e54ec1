/** Deeper than any Bitbucket payload (a Cloud push nests about a dozen levels) by a wide margin. */
export const MAX_JSON_DEPTH = 128;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/**
 * Whether JSON text nests objects and arrays deeper than `max`, found by scanning the bytes before any parse:
 * V8 parses deep nesting, but whatever walks the result afterwards may recurse, and a body 100k levels deep
 * must be a clear 400, never a stack overflow answered 5xx (which Bitbucket would retry in vain). Strings are
 * skipped with Buffer.indexOf (native), so the loop visits only the structure between them. Malformed text
 * ends the scan too; the parse then refuses it.
 */
export function nestsDeeperThan(body: Buffer, max = MAX_JSON_DEPTH): boolean {
  // Each level takes a byte at least.
  if (body.length <= max) return false;
  let depth = 0;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const c = body[i];
    if (c === QUOTE) {
      i = closingQuote(body, i);
      if (i < 0) return false;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote that closes the string opened at `open`, or -1 when there is none. */
function closingQuote(body: Buffer, open: number): number {
  let at = body.indexOf(QUOTE, open + 1);
  while (at > 0 && body[at - 1] === BACKSLASH) {
    // Escaped only after an odd run of backslashes (`\\"` ends the string).
    let slashes = 1;
    while (body[at - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) break;
    at = body.indexOf(QUOTE, at + 1);
  }
  return at;
}
