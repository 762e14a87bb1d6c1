import {
  definedOnly,
  durationOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import { HOUR, SECOND } from '../time.js';

/**
 * How long to wait before the next attempt: `base * 2^(attempt - 1)`, capped at `max`, then
 * shortened by up to `jitter` (a fraction) at random so that failed tasks do not retry in step.
 */
export interface Backoff {
  /** Delay after the first failed attempt, in ms. Default 2 s. */
  base?: number;
  /** Longest delay, in ms. Default 1 hour. */
  max?: number;
  /** From 0 (none) to 1; default 0.2 (each delay is 80–100% of the exponential one). */
  jitter?: number;
}

export const defaultBackoff: Required<Backoff> = { base: 2 * SECOND, max: HOUR, jitter: 0.2 };

export function checkBackoff(where: string, backoff: Backoff): Required<Backoff> {
  rejectUnknownKeys(where, backoff, Object.keys(defaultBackoff));
  const merged = { ...defaultBackoff, ...definedOnly(backoff) };
  durationOption(`${where}.base`, merged.base, 0);
  durationOption(`${where}.max`, merged.max, merged.base);
  if (typeof merged.jitter !== 'number' || !(merged.jitter >= 0 && merged.jitter <= 1)) {
    throw new InvalidOptionError(
      `${where}.jitter`,
      `must be a number from 0 to 1, got ${merged.jitter}`,
    );
  }
  return merged;
}

/** The delay before the attempt after `attempt` (1 for the first run); `random` is in [0, 1). */
export function retryDelay(attempt: number, backoff: Required<Backoff>, random: number): number {
  const exponential = Math.min(backoff.max, backoff.base * 2 ** Math.min(attempt - 1, 52));
  return Math.round(exponential * (1 - backoff.jitter * random));
}
