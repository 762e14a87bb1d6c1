import { MAX_DURATION } from '../options-check.js';
import { isInstance } from './is-instance.js';

/**
 * Thrown by a task to run again after `delay` milliseconds without using up an attempt:
 * "the service asked me to come back in 30 s" is not a failure of the task.
 */
export class RetryLaterError extends Error {
  readonly delay: number;

  constructor(delay: number, message = `retry in ${delay} ms`, options?: ErrorOptions) {
    super(message, options);
    if (!isRetryDelay(delay)) {
      throw new RangeError(
        `RetryLaterError: delay must be a finite number of milliseconds >= 0, got ${delay}`,
      );
    }
    this.name = 'RetryLaterError';
    this.delay = delay;
  }
}

/** Whether `delay` is one a RetryLaterError can carry: a finite number of milliseconds >= 0. */
export function isRetryDelay(delay: unknown): delay is number {
  return typeof delay === 'number' && Number.isFinite(delay) && delay >= 0;
}

/**
 * The delay `thrown` asks for when it is a RetryLaterError with a valid one, else null; at most
 * 100 years, as an enqueue's delay, so that the next run is a time every store can hold. Never
 * throws, whatever was thrown: a Proxy can pass for a RetryLaterError and throw on every read.
 */
export function retryLaterDelay(thrown: unknown): number | null {
  if (!isInstance(thrown, RetryLaterError)) return null;
  try {
    const { delay } = thrown;
    return isRetryDelay(delay) ? Math.min(delay, MAX_DURATION) : null;
  } catch {
    return null;
  }
}
