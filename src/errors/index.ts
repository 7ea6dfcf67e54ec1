/**
 * Every error the relay raises on purpose, in one folder: the catalogue of stable codes its JSON answers carry,
 * one file per error family, and the HTTP handlers that turn any error into a catalogue answer.
 */
export { ERRORS, type ErrorBody, type ErrorCode } from './catalogue.js';
export { ConfigError } from './config-error.js';
export { DeadLettered } from './dead-lettered.js';
export { DurabilityError, NotDurableYet } from './durability-error.js';
export {
  answerClientError,
  installBodyDeadline,
  installErrorHandlers,
  isRedisUnavailable,
} from './http-handlers.js';
export { RelayError } from './relay-error.js';
export { RetryLater } from './retry-later.js';
export { ShardCountMismatch } from './shard-count-mismatch.js';
