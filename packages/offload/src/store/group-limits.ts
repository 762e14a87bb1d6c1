import type { TaskGroup } from '../types.js';

/**
 * How many tasks of a key may start at `now` under `rate`. A rate is a schedule of starts (the
 * generic cell rate algorithm): starts are spaced `period / max` apart, and up to `max` may come
 * at once after a quiet period. `tat` is when the schedule's next start is due; 0 when the key
 * has started nothing yet.
 */
export function startsAllowed(
  rate: NonNullable<TaskGroup['rate']>,
  tat: number,
  now: number,
): number {
  const step = rate.period / rate.max;
  const from = Math.max(tat, now);
  // The epsilon absorbs the rounding of a step that is not a whole number of ms.
  return Math.max(0, Math.floor((now + rate.period - from) / step + 1e-9));
}

/** When a key whose rate allows no start now may start one: once `tat` is a step from a period ahead. */
export function nextStart(rate: NonNullable<TaskGroup['rate']>, tat: number): number {
  return tat - rate.period + rate.period / rate.max;
}

/** The key's `tat` after `count` starts at `now`. */
export function tatAfter(
  rate: NonNullable<TaskGroup['rate']>,
  tat: number,
  now: number,
  count: number,
): number {
  return Math.max(tat, now) + (count * rate.period) / rate.max;
}

/**
 * How many tasks of a key may start now: `left` at most, fewer than `concurrency` running with
 * them, within the rate; 0 while the key is throttled.
 */
export function keyAllows(
  group: TaskGroup,
  state: { running: number; tat: number; throttledUntil: number },
  now: number,
  left: number,
): number {
  if (state.throttledUntil > now) return 0;
  let allowed = left;
  if (group.concurrency !== null) allowed = Math.min(allowed, group.concurrency - state.running);
  if (group.rate !== null) allowed = Math.min(allowed, startsAllowed(group.rate, state.tat, now));
  return Math.max(0, allowed);
}

/** A task's group from its stored columns. */
export function toGroup(
  key: string | null,
  concurrency: number | null,
  rateMax: number | null,
  ratePeriod: number | null,
): TaskGroup | null {
  if (key === null) return null;
  const rate =
    rateMax === null || ratePeriod === null ? null : { max: rateMax, period: ratePeriod };
  return { key, concurrency, rate };
}
