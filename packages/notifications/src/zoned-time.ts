import { DAY, MINUTE } from 'offload';

/**
 * Wall-clock time in an IANA time zone, with Intl only. A local time that does not exist (the
 * hour skipped when clocks go forward) is read as the first moment the clock shows a later time;
 * one that exists twice (the hour repeated when clocks go back) as its first occurrence.
 */

/** A local date and time of day. `month` from 1, `weekday` 0 (Sunday) to 6. */
export interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

function format(zone: string): Intl.DateTimeFormat {
  let found = formats.get(zone);
  if (found === undefined) {
    found = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, found);
  }
  return found;
}

/** The wall time at instant `at` (epoch ms) in `zone`. */
export function wallTime(at: number, zone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const part of format(zone).formatToParts(at)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const { year, month, day, hour, minute } = parts as Record<string, number>;
  return {
    year: year!,
    month: month!,
    day: day!,
    hour: hour!,
    minute: minute!,
    weekday: new Date(Date.UTC(year!, month! - 1, day!)).getUTCDay(),
  };
}

/** The wall time of `at` in `zone`, as if it were UTC, to the minute. */
function wallMinutes(at: number, zone: string): number {
  const w = wallTime(at, zone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute);
}

/**
 * The instant the clocks of `zone` first show the local time `hour:minute` on the local date
 * `year-month-day` (the day may overflow: day 32 is the next month's first), or, when that time
 * is skipped, the instant they jump past it.
 */
export function instantOf(
  zone: string,
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  // The zone's offsets a day either side: one of them holds at `wall`, unless it is skipped.
  const offsets = [wall - DAY, wall + DAY].map((t) => wallMinutes(t, zone) - floorMinute(t));
  const candidates = offsets.map((offset) => wall - offset).sort((a, b) => a - b);
  const exact = candidates.find((t) => wallMinutes(t, zone) === wall);
  if (exact !== undefined) return exact;
  // Skipped: the first minute at which the clock shows `wall` or later.
  let [low, high] = [candidates[0]!, candidates[1]!];
  while (high - low > MINUTE) {
    const middle = low + Math.floor((high - low) / 2 / MINUTE) * MINUTE;
    if (wallMinutes(middle, zone) >= wall) high = middle;
    else low = middle;
  }
  return high;
}

function floorMinute(t: number): number {
  return t - (((t % MINUTE) + MINUTE) % MINUTE);
}

/** The local date `days` after `wall`'s, as year, month and day. */
export function addDays(
  wall: WallTime,
  days: number,
): { year: number; month: number; day: number } {
  const date = new Date(Date.UTC(wall.year, wall.month - 1, wall.day + days));
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

/** The weekday (0 Sunday) of a local date. */
export function weekdayOf(date: { year: number; month: number; day: number }): number {
  return new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay();
}
