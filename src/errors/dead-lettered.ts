import { UnrecoverableError } from 'bullmq';

/**
 * Thrown by the delivery processor once it has written the dead letter itself (BullMQ then fails the job at
 * once, as for any UnrecoverableError); the worker writes the dead letters of every other final failure.
 */
export class DeadLettered extends UnrecoverableError {
  constructor(reason: string) {
    super(reason);
    // BullMQ names the error after its class; the failed job reads as any unrecoverable failure.
    this.name = 'UnrecoverableError';
  }
}
