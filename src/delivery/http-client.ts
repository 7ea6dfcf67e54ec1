import { Pool } from 'undici';
import type { TargetConfig } from '../config/types.js';
import type { OutgoingRequest } from './relay-headers.js';
import { redactSecrets } from './secret-forms.js';

export interface TargetAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Start of the response body, only read for non-2xx answers (dead-letter excerpts). */
  bodyStart: string;
  /** The whole body of a 2xx answer to a GET (a look-up), up to LOOKUP_MAX_BYTES. */
  body?: string;
}

const EXCERPT_READ_BYTES = 4096;
const EXCERPT_MAX_CHARS = 512;
// A look-up's answer (a filtered list of a few builds, one plan branch) is small; anything bigger is cut (and
// then does not parse).
const LOOKUP_MAX_BYTES = 2 * 1024 * 1024;

/**
 * One keep-alive connection pool per target (its origin), sized to the target's concurrency, so deliveries
 * reuse connections and one target's sockets never starve another's. undici does not follow redirects unless
 * asked to, and the relay never asks: a 3xx is classified like any other non-retryable status.
 */
export class TargetClient {
  private readonly pool: Pool;
  private readonly origin: string;

  constructor(private readonly target: TargetConfig) {
    this.origin = new URL(target.url).origin;
    this.pool = new Pool(this.origin, {
      connections: target.concurrency + 1,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 300_000,
      connectTimeout: Math.min(target.timeout, 10_000),
      headersTimeout: target.timeout,
      bodyTimeout: target.timeout,
    });
  }

  async send(req: OutgoingRequest, query?: [string, string]): Promise<TargetAnswer> {
    const url = new URL(req.url);
    if (query) url.searchParams.set(query[0], query[1]);
    if (url.origin !== this.origin) throw new Error('request url outside the target origin');
    // The whole exchange, not just the gaps between bytes, must fit in the timeout (and so in the job lock). A
    // cleared timer rather than AbortSignal.timeout(): same TimeoutError, less CPU per request
    // (docs/benchmarks.md), and no timer left pending for the timeout after every delivery.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(timeoutError()), this.target.timeout);
    timer.unref();
    try {
      const res = await this.pool.request({
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers: req.headers,
        body: req.method === 'GET' ? null : req.body,
        headersTimeout: this.target.timeout,
        bodyTimeout: this.target.timeout,
        signal: abort.signal,
      });
      let bodyStart = '';
      if (res.statusCode >= 200 && res.statusCode < 300) {
        if (req.method === 'GET') {
          const body = await readUpTo(res.body, LOOKUP_MAX_BYTES);
          return { status: res.statusCode, headers: res.headers, bodyStart, body };
        }
        await res.body.dump();
      } else {
        // An error page is not worth reading in full.
        bodyStart = await readUpTo(res.body, EXCERPT_READ_BYTES);
      }
      return { status: res.statusCode, headers: res.headers, bodyStart };
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /** Abort whatever is still in flight (shutdown past its grace): `close()` would wait for it. */
  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

async function readUpTo(body: AsyncIterable<unknown>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    // Leaving the loop destroys the rest of the body.
    if (size >= max) break;
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8');
}

/** What AbortSignal.timeout() aborts with. */
function timeoutError(): DOMException {
  return new DOMException('The operation was aborted due to timeout', 'TimeoutError');
}

/**
 * A dead letter's body excerpt: printable, at most 512 characters, with every configured secret of the target
 * in every encoding it may be echoed in (secretForms), and anything that looks like a bearer token or password
 * field, blanked, since error pages sometimes echo the request back.
 */
export function excerpt(text: string, secrets: readonly string[]): string {
  let out = redactSecrets(text, secrets);
  out = out
    .replace(/(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]')
    .replace(
      /("?(?:password|secret|token|access_token|client_secret)"?\s*[:=]\s*)"?[^"\s,&}]+"?/gi,
      '$1[redacted]',
    );
  let printable = '';
  for (const ch of out) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 ? c !== 0x7f : ch === '\n' || ch === '\t' || ch === '\r') printable += ch;
    if (printable.length >= EXCERPT_MAX_CHARS) break;
  }
  return printable.slice(0, EXCERPT_MAX_CHARS);
}
