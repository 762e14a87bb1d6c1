import { MAX_DURATION } from '../options-check.js';
import { isInstance } from './is-instance.js';

/** Options of a RetryLaterError. */
export interface RetryLaterOptions extends ErrorOptions {
  /**
   * Hold back every task of the task's group key for `delay`, not only this one: for answers such
   * as an HTTP 429 with Retry-After, which speak for the whole provider. Every process on the
   * store obeys it. Without a group, the task alone is retried later.
   */
  throttle?: boolean;
}

/**
 * Thrown by a task to run again after `delay` milliseconds without using up an attempt:
 * "the service asked me to come back in 30 s" is not a failure of the task. With `throttle`, the
 * task's whole group key waits as long. Takes `(delay, message?, options?)` or `(delay, options)`.
 */
export class RetryLaterError extends Error {
  readonly delay: number;
  readonly throttle: boolean;

  constructor(
    delay: number,
    message: string | RetryLaterOptions = `retry in ${delay} ms`,
    options?: RetryLaterOptions,
  ) {
    if (typeof message === 'object' && message !== null) {
      options = message;
      message = `retry in ${delay} ms`;
    }
    super(message, options);
    if (!isRetryDelay(delay)) {
      throw new RangeError(
        `RetryLaterError: delay must be a finite number of milliseconds >= 0, got ${delay}`,
      );
    }
    this.name = 'RetryLaterError';
    this.delay = delay;
    this.throttle = options?.throttle === true;
  }
}

/** Whether `delay` is one a RetryLaterError can carry: a finite number of milliseconds >= 0. */
export function isRetryDelay(delay: unknown): delay is number {
  return typeof delay === 'number' && Number.isFinite(delay) && delay >= 0;
}

/** Whether `thrown` is a RetryLaterError that throttles its group key; never throws. */
export function throttles(thrown: unknown): boolean {
  if (!isInstance(thrown, RetryLaterError)) return false;
  try {
    return thrown.throttle === true;
  } catch {
    return false;
  }
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
