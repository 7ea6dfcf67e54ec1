/** An origin no real request has: only used to ask the URL parser whether a path stays on the same origin. */
const PROBE_ORIGIN = 'https://hookrelay.invalid';

/**
 * The `next` a login may redirect to, or undefined to use the default page. Only a path on this origin: not
 * `//evil` or `/\evil` (protocol-relative), and no control character or space anywhere, because browsers
 * strip tab and newline from a Location (`/<TAB>/evil` becomes `//evil`) and Node refuses them in a header
 * (an answer that fails after the session exists). Printable ASCII is all a browser sends in a path anyway.
 * Finally the URL parser, which is what the browser runs, must resolve it to this origin.
 */
export function safeNextPath(next: unknown, basePath: string): string | undefined {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2048) return undefined;
  if (!/^[\x21-\x7e]+$/.test(next)) return undefined;
  if (!next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return undefined;
  try {
    return new URL(`${basePath}${next}`, PROBE_ORIGIN).origin === PROBE_ORIGIN ? next : undefined;
  } catch {
    return undefined;
  }
}
