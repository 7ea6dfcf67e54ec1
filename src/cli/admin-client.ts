import { type Command, CommanderError } from 'commander';

export const EXIT_USAGE = 2;

/** An answer of the admin API that is not 2xx, with the catalogue code it carries. */
export class AdminApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'AdminApiError';
  }
}

export interface ClientOptions {
  adminUrl: string;
  token?: string;
  json?: boolean;
}

/** The admin API over HTTP (fetch = undici). Every call carries the Bearer token. */
export class AdminClient {
  private readonly base: string;
  constructor(
    baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs = 60_000,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(
        `cannot reach the admin API at ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      throw new AdminApiError(res.status, 'BAD_RESPONSE', `not JSON (HTTP ${res.status})`);
    }
    if (!res.ok) {
      const e = json as { error?: string; message?: string };
      throw new AdminApiError(res.status, e.error ?? `HTTP_${res.status}`, e.message ?? res.statusText);
    }
    return json as T;
  }

  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') qs.set(k, String(v));
    const q = qs.toString();
    return this.request<T>('GET', q ? `${path}?${q}` : path);
  }
}

/** `--admin-url`, `--token` and `--json` on a command that talks to the admin API. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option(
      '--admin-url <url>',
      'admin API base URL (env HOOKRELAY_ADMIN_URL)',
      process.env.HOOKRELAY_ADMIN_URL || 'http://127.0.0.1:8081',
    )
    .option('--token <token>', 'admin token (prefer env HOOKRELAY_ADMIN_TOKEN: arguments show up in ps)')
    .option('--json', 'machine-readable JSON on stdout');
}

export function clientFrom(opts: ClientOptions): AdminClient {
  const token = opts.token ?? process.env.HOOKRELAY_ADMIN_TOKEN;
  if (!token)
    throw new CommanderError(
      EXIT_USAGE,
      'usage',
      'no admin token: set HOOKRELAY_ADMIN_TOKEN or pass --token',
    );
  try {
    new URL(opts.adminUrl);
  } catch {
    throw new CommanderError(EXIT_USAGE, 'usage', `--admin-url is not a URL: ${opts.adminUrl}`);
  }
  return new AdminClient(opts.adminUrl, token);
}
