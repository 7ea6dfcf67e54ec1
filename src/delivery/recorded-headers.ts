import { redactSecrets } from './secret-forms.js';

/** Headers whose value is a credential or a signature whatever it looks like: recorded by name only. */
const CREDENTIAL_HEADER = /authorization|cookie|signature|token|secret|api-?key|password|session/i;
const MAX_HEADERS = 40;
const MAX_VALUE_CHARS = 256;

/**
 * A request's or an answer's headers as an attempt's record keeps them for ops (the event timeline): names in
 * lower case, credential-bearing values masked, any configured secret blanked in the rest, each value bounded.
 */
export function recordedHeaders(
  headers: Record<string, string | string[] | number | undefined>,
  secrets: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  let kept = 0;
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined || kept >= MAX_HEADERS) continue;
    const value = Array.isArray(raw) ? raw.join(', ') : String(raw);
    out[name.toLowerCase()] = CREDENTIAL_HEADER.test(name)
      ? '[masked]'
      : redactSecrets(value, secrets).slice(0, MAX_VALUE_CHARS);
    kept += 1;
  }
  return out;
}
