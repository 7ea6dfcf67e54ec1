import { ERRORS, type ErrorBody, type ErrorCode } from './catalogue.js';

/** A refusal with a catalogue code: the HTTP status and the JSON body `{error, message}` follow from the code. */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying; set on 503s so Bitbucket and scripts back off. */
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message?: string, opts: { retryAfter?: number; cause?: unknown } = {}) {
    super(message ?? ERRORS[code].message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RelayError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retryAfter = opts.retryAfter;
  }

  toBody(): ErrorBody {
    // 5xx bodies stay generic: the detail goes to the log, never to the caller.
    const message = this.status >= 500 ? ERRORS[this.code].message : this.message;
    return { error: this.code, message };
  }
}
