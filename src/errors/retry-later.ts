/** A failed attempt worth another try, after `delayMs` (computed backoff, or the target's Retry-After). */
export class RetryLater extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLater';
  }
}
