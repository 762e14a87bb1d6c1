import {
  describe,
  durationOption,
  integerOption,
  InvalidOptionError,
  MAX_DURATION,
  MAX_TIMER_DELAY,
  rejectUnknownKeys,
} from '../options-check.js';
import type { GroupOptions, TaskGroup } from '../types.js';
import { isStorableText } from './define-task.js';

/** Most tasks of one key running at once that a limit may allow. */
export const MAX_GROUP_CONCURRENCY = 100_000;
/** Most starts per period a rate may allow. */
export const MAX_RATE = 1_000_000;

/**
 * A definition's `group`: fixed, or chosen from each payload. Written as a method, as `run` is,
 * so that a definition of a payload type still fits where a definition of `unknown` is expected.
 */
export type GroupOption<P> =
  GroupOptions | { choose(payload: P): GroupOptions | null | undefined }['choose'];

/** Checks a definition's `group` once, when the definition is made. */
export function checkGroupOption(where: string, group: unknown): void {
  if (typeof group === 'function') return;
  taskGroup(where, group);
}

/**
 * The group a task is stored with: the enqueue's `group`, else the definition's (called with the
 * payload when it is a function), checked and with absent limits as null.
 */
export function groupOf(
  given: GroupOptions | undefined,
  option: GroupOption<never> | undefined,
  payload: unknown,
): TaskGroup | null {
  if (given !== undefined) return taskGroup('enqueue options.group', given);
  if (option === undefined) return null;
  if (typeof option !== 'function') return taskGroup('task group', option);
  const chosen = (option as (payload: unknown) => GroupOptions | null | undefined)(payload);
  return chosen == null ? null : taskGroup('task group(payload)', chosen);
}

/** Checks a group's options, naming the field that is wrong. */
export function taskGroup(where: string, group: unknown): TaskGroup {
  rejectUnknownKeys(where, group, ['key', 'concurrency', 'rate']);
  const { key, concurrency, rate } = group as GroupOptions;
  checkGroupKey(`${where}.key`, key);
  let limit: TaskGroup['rate'] = null;
  if (rate !== undefined) {
    rejectUnknownKeys(`${where}.rate`, rate, ['max', 'period']);
    limit = {
      max: integerOption(`${where}.rate.max`, rate.max, 1, MAX_RATE),
      period: integerOption(`${where}.rate.period`, rate.period, 1, MAX_TIMER_DELAY),
    };
  }
  return {
    key,
    concurrency:
      concurrency === undefined
        ? null
        : integerOption(`${where}.concurrency`, concurrency, 1, MAX_GROUP_CONCURRENCY),
    rate: limit,
  };
}

/** Checks a group key: 1 to 500 characters that every store can hold. */
export function checkGroupKey(where: string, key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 500 || !isStorableText(key)) {
    throw new InvalidOptionError(
      where,
      `must be a string of 1 to 500 characters without NUL or unpaired surrogates, e.g. "tenant:42", got ${describe(key)}`,
    );
  }
}

/** Checks the arguments of `runtime.throttle`. */
export function checkThrottle(key: unknown, delay: unknown): void {
  checkGroupKey('throttle key', key);
  durationOption('throttle delay', delay, 0, MAX_DURATION);
}
