/**
 * C0 controls, DEL and C1 controls (U+0080–U+009F: a terminal takes U+009B as CSI, like ESC [). Repository and
 * ref names, excerpts and messages come from payloads and targets: printed raw they could move the cursor,
 * retitle the terminal, hide lines or forge others.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

const escapeOne = (ch: string) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One value for a human to read: every control character shown as `\u001b`, newlines included. */
export function printable(value: string): string {
  return value.replace(CONTROL, escapeOne);
}

/** Human output: aligned plain-text tables (no colours, so it pipes and greps well). */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : printable(String(c)))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}

/** `2024-05-01T10:00:00.000Z` → `2024-05-01 10:00:00` (UTC, as the API gives it). */
export function shortTime(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

/**
 * Every line of human output goes through here: control characters are escaped, line breaks kept (a value
 * that must not break a line is passed through printable() first, as table() does).
 */
export function print(text: string): void {
  const safe = text.replace(CONTROL_BUT_NEWLINE, escapeOne);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** An error for the terminal (stderr), escaped like print(): API messages can quote what a client sent. */
export function printError(text: string): void {
  process.stderr.write(`${text.replace(CONTROL_BUT_NEWLINE, escapeOne)}\n`);
}
