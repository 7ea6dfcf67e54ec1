/**
 * The shapes a secret takes when a target echoes a request back in an error page: as sent, percent-encoded
 * (query strings, form bodies; upper- and lower-case hex, `+` for spaces), and base64 / base64url (Basic
 * credentials, tokens wrapped in JSON-in-base64). Base64 of a secret depends on where it sits in the encoded
 * stream, so each of the three alignments contributes the part that does not depend on its neighbours.
 */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const percent = encodeURIComponent(secret);
  forms.add(percent);
  forms.add(percent.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  forms.add(new URLSearchParams({ s: secret }).toString().slice(2));
  const bytes = Buffer.from(secret, 'utf8');
  forms.add(bytes.toString('base64'));
  forms.add(bytes.toString('base64url'));
  for (let shift = 0; shift < 3; shift += 1) {
    const total = shift + bytes.length;
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    // Characters 0-3 hold the zero bytes when shifted; the last group may hold the next neighbour's bits.
    const core = encoded.slice(shift === 0 ? 0 : 4, 4 * Math.floor(total / 3));
    if (core.length >= 8) {
      forms.add(core);
      forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  // Longest first, so a longer form is blanked whole before a shorter one could cut it.
  return [...forms].filter((form) => form.length >= 4).sort((a, b) => b.length - a.length);
}

/**
 * The forms of a set of secrets, longest first, by the set's contents. A delivery redacts every header it
 * records and every answer excerpt with the same few secrets, so the forms are worked out once per set;
 * the cache is bounded because tokens fetched at run time (OAuth, GitHub App) join the set and change.
 */
const formsOfSet = new Map<string, readonly string[]>();
const MAX_CACHED_SETS = 256;

function formsOf(secrets: readonly string[]): readonly string[] {
  const id = secrets.join('\u0000');
  const cached = formsOfSet.get(id);
  if (cached) return cached;
  const forms = [...new Set(secrets.flatMap(secretForms))].sort((a, b) => b.length - a.length);
  if (formsOfSet.size >= MAX_CACHED_SETS) formsOfSet.delete(formsOfSet.keys().next().value as string);
  formsOfSet.set(id, forms);
  return forms;
}

/** Every form of every secret replaced by `[redacted]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const form of formsOf(secrets)) {
    if (out.includes(form)) out = out.split(form).join('[redacted]');
  }
  return out;
}
