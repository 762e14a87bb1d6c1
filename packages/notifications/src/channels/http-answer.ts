import type { HttpResponse } from '../net/http-client.js';
import { RetryLaterError } from 'offload';
import { DeliveryRejectedError, RecipientGoneError } from '../delivery-errors.js';
import { DAY, HOUR, SECOND } from 'offload';

/** How long after a notification was created a `Retry-After` is still honoured without using an attempt. */
export const RETRY_AFTER_WINDOW = DAY;
/** The longest `Retry-After` honoured; a longer one is cut to this. */
export const MAX_RETRY_AFTER = HOUR;

export interface AnswerContext {
  /** What was called, for messages: an origin, never a secret. */
  target: string;
  /** Statuses that mean the recipient is gone for good (410; and 404 for push services). */
  gone: readonly number[];
  /** When the notification was created, in epoch ms. */
  createdAt: number;
  now: number;
  /** How long a 429 without Retry-After holds the provider back, in ms. */
  throttle: number;
}

/**
 * Turns an HTTP answer into the outcome of the attempt: returns on 2xx, throws otherwise.
 * Gone → `RecipientGoneError`; 429 and 5xx → retry, after `Retry-After` when given (for a day
 * after the notification was created; later, every retry uses up an attempt so that a peer
 * cannot keep a task alive forever). A 429 in that day speaks for the whole provider: it throttles
 * the delivery's group key (the provider's), for as long as Retry-After asks or `throttle` ms
 * without one, so that no process sends it anything before then. 408 and 425 retry; a redirect
 * is not followed and retries (the peer may be mid-deploy); any other 4xx says the request itself
 * is wrong: no retry.
 */
export function checkAnswer(response: HttpResponse, context: AnswerContext): string {
  const { status } = response;
  const summary = `${status} ${response.statusText}`.trim();
  if (status >= 200 && status < 300) return summary;
  const answered = `${context.target} answered ${summary}${excerpt(response.body)}`;
  if (context.gone.includes(status))
    throw new RecipientGoneError(
      `${answered}: the recipient is gone; no more deliveries are sent to it`,
    );
  if (status === 429 || status >= 500) {
    const asked = retryAfter(response.headers['retry-after'], context.now);
    const inWindow = context.now - context.createdAt < RETRY_AFTER_WINDOW;
    if (status === 429 && inWindow) {
      const delay = asked ?? context.throttle;
      throw new RetryLaterError(
        delay,
        `${answered}; no delivery goes to ${context.target} for ${Math.ceil(delay / SECOND)} s, ${asked === null ? 'the default for a 429 without Retry-After' : 'as Retry-After asks'}`,
        { throttle: true },
      );
    }
    if (asked !== null && inWindow) {
      throw new RetryLaterError(
        asked,
        `${answered}; retrying after ${Math.ceil(asked / SECOND)} s as Retry-After asks`,
      );
    }
    throw new Error(answered);
  }
  if (status >= 300 && status < 400) {
    const location = response.headers.location;
    throw new Error(
      `${answered} (a redirect${typeof location === 'string' ? ` to ${location}` : ''}); redirects are not followed: give the final URL`,
    );
  }
  if (status === 408 || status === 425) throw new Error(answered);
  throw new DeliveryRejectedError(answered);
}

/** A `Retry-After` value (seconds, or an HTTP date) in ms, at most `MAX_RETRY_AFTER`; null when absent or unreadable. */
export function retryAfter(header: string | string[] | undefined, now: number): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return null;
  const text = value.trim();
  let delay: number;
  if (/^\d+$/.test(text)) delay = Number(text) * SECOND;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    delay = Math.max(0, at - now);
  }
  return Math.min(delay, MAX_RETRY_AFTER);
}

function excerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`;
}
