/**
 * The one error catalogue. Every rejection the relay makes (ingress, admin API, CLI) uses a code from here, so
 * clients and dashboards can rely on `error` staying stable while `message` may be reworded.
 */
export const ERRORS = {
  SOURCE_NOT_FOUND: { status: 404, message: 'unknown webhook source' },
  NOT_FOUND: { status: 404, message: 'not found' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'request body is larger than the configured limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'content type must be application/json' },
  SIGNATURE_MISSING: { status: 401, message: 'X-Hub-Signature header is missing' },
  SIGNATURE_INVALID: { status: 401, message: 'signature does not match any secret of this source' },
  SIGNATURE_ALGORITHM_UNSUPPORTED: { status: 401, message: 'signature algorithm must be sha256' },
  HEADER_MISSING: { status: 400, message: 'a required header is missing' },
  EVENT_KEY_MALFORMED: { status: 400, message: 'X-Event-Key is not a well-formed event key' },
  LOOP_DETECTED: { status: 508, message: 'request already passed through this relay' },
  QUEUE_UNAVAILABLE: { status: 503, message: 'event store unavailable, retry later' },
  NOT_READY: { status: 503, message: 'not ready' },
  UNAUTHORIZED: { status: 401, message: 'missing or invalid credentials' },
  FORBIDDEN: { status: 403, message: 'this identity may not do that' },
  BAD_REQUEST: { status: 400, message: 'bad request' },
  REQUEST_TIMEOUT: { status: 408, message: 'request not received in time' },
  RATE_LIMITED: { status: 429, message: 'too many requests, retry later' },
  UNKNOWN_FILTER: { status: 400, message: 'the list does not know this filter' },
  FILTER_REQUIRED: { status: 400, message: 'a filter is required for bulk actions' },
  CONFLICT: { status: 409, message: 'not in a state that allows this action' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorBody {
  error: ErrorCode;
  message: string;
}
