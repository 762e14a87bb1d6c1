import { InvalidOptionError } from './errors/invalid-option.js';
import { DAY } from './time.js';

/** The error every check here throws, naming the option. */
export { InvalidOptionError };

/** Refuses keys that are not known, suggesting the closest known one for a typo. */
export function rejectUnknownKeys(where: string, given: unknown, known: readonly string[]): void {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new InvalidOptionError(
      where,
      `must be an object of options (${known.join(', ')}), got ${Array.isArray(given) ? 'an array' : describe(given)}`,
    );
  }
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue;
    const guess = closestName(key, known);
    throw new InvalidOptionError(
      `${where}.${key}`,
      `is not an option${guess ? `; did you mean "${guess}"?` : '.'} Known options: ${known.join(', ')}`,
    );
  }
}

/** `object` without its undefined fields: an option given as undefined means its default. */
export function definedOnly<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

/** A whole number in [min, max], or the fallback when undefined. */
export function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `must be a whole number from ${min} to ${max}, got ${describe(value)}`,
    );
  }
  return value;
}

/** Largest delay a Node.js timer accepts (about 24.8 days). */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

/** Longest duration that is not a timer's (a delay, how long tasks are kept): 100 years. */
export const MAX_DURATION = 100 * 365 * DAY;

/** A duration in milliseconds, in [min, max]; `max` defaults to what a timer accepts. */
export function durationOption(
  name: string,
  value: unknown,
  min = 1,
  max = MAX_TIMER_DELAY,
): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new InvalidOptionError(
      name,
      `must be a number of milliseconds from ${min} to ${max}, got ${describe(value)}`,
    );
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null)
    return String(value);
  return typeof value;
}

/**
 * The name a typo most likely meant: one it begins (3 letters at least, any case), or the nearest
 * in edits, up to a third of its length (2 at least). Undefined when none is that near.
 */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    if (lower.length >= 3 && candidate.toLowerCase().startsWith(lower)) return candidate;
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
