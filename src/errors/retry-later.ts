/**
 * Thrown by a task to run again after `delay` milliseconds without using up an attempt:
 * "the service asked me to come back in 30 s" is not a failure of the task.
 */
export class RetryLaterError extends Error {
  readonly delay: number;

  constructor(delay: number, message = `retry in ${delay} ms`, options?: ErrorOptions) {
    super(message, options);
    if (!Number.isFinite(delay) || delay < 0) {
      throw new RangeError(
        `RetryLaterError: delay must be a finite number of milliseconds >= 0, got ${delay}`,
      );
    }
    this.name = 'RetryLaterError';
    this.delay = delay;
  }
}
