import { PermanentError } from 'offload';

/** An outgoing call ran past its timeout. Retried like any failed attempt. */
export class DeliveryTimeoutError extends Error {
  constructor(
    readonly timeout: number,
    target: string,
  ) {
    super(`${target} did not answer within ${timeout} ms`);
    this.name = 'DeliveryTimeoutError';
  }
}

/**
 * The recipient no longer exists: a webhook URL answered 410 Gone, a push service said the
 * subscription is gone (404 or 410). Not retried, and later deliveries to it are not attempted.
 */
export class RecipientGoneError extends PermanentError {
  constructor(message: string) {
    super(message);
    this.name = 'RecipientGoneError';
  }
}

/** A target the address rules refuse: not retried, since the rules will not change. */
export class RefusedTargetError extends PermanentError {
  constructor(message: string) {
    super(message);
    this.name = 'RefusedTargetError';
  }
}

/** The recipient or its provider refused the notification for good (a 4xx, an SMTP 5xx). */
export class DeliveryRejectedError extends PermanentError {
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryRejectedError';
  }
}

/** What became of one outgoing call, as metrics count it. */
export type CallOutcome =
  'delivered' | 'rejected' | 'gone' | 'refused' | 'retry' | 'timeout' | 'aborted';

export const CALL_OUTCOMES: readonly CallOutcome[] = [
  'delivered',
  'rejected',
  'gone',
  'refused',
  'retry',
  'timeout',
  'aborted',
];

/** The outcome of a call that threw `error`; `signal` is the task's. */
export function outcomeOf(error: unknown, signal: AbortSignal): CallOutcome {
  if (signal.aborted) return 'aborted';
  if (error instanceof DeliveryTimeoutError) return 'timeout';
  if (error instanceof RecipientGoneError) return 'gone';
  if (error instanceof RefusedTargetError) return 'refused';
  if (error instanceof PermanentError) return 'rejected';
  return 'retry';
}
