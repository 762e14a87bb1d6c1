import { DAY } from 'offload';

/** How far ahead a notification may be scheduled: a year. */
export const MAX_SEND_AHEAD = 365 * DAY;

/**
 * An RFC 3339 date-time (section 5.6): a full date, `T`, a time with seconds and an optional
 * fraction, and a zone (`Z` or an offset). Letters may be in either case, as the RFC allows.
 */
const RFC_3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

const EXAMPLE = '"2026-12-24T09:30:00Z" or "2026-12-24T10:30:00+01:00"';

/**
 * Reads `sendAt` of a notify request at `now`: the time as given, which may be past (deliveries
 * are then due at once; see `dueAt`), or null when absent; or why it is refused, naming `sendAt`.
 */
export function readSendAt(value: unknown, now: Date): { at: Date | null } | { problem: string } {
  if (value === undefined || value === null) return { at: null };
  if (typeof value !== 'string') {
    return {
      problem: `sendAt must be an RFC 3339 time as a string, such as ${EXAMPLE}, got ${Array.isArray(value) ? 'an array' : `a ${typeof value}`}`,
    };
  }
  const time = parseRfc3339(value);
  if (time === null) {
    return {
      problem: `sendAt must be an RFC 3339 time with a time zone, such as ${EXAMPLE}, got ${JSON.stringify(value.slice(0, 64))}`,
    };
  }
  if (time - now.getTime() > MAX_SEND_AHEAD) {
    return {
      problem: `sendAt is more than a year ahead (${new Date(time).toISOString()}); a notification may be scheduled at most 365 days from now`,
    };
  }
  return { at: new Date(time) };
}

/** When deliveries asked for at `sendAt` are due: then, or `now` for a time in the past. */
export function dueAt(sendAt: Date, now: Date): Date {
  return sendAt.getTime() > now.getTime() ? sendAt : now;
}

/**
 * Epoch milliseconds of an RFC 3339 date-time, or null when it is not one. Stricter than
 * `Date.parse`, which takes many other forms and rolls a date that does not exist (February 30)
 * over into the next month. A leap second (`:60`) is refused: JavaScript times have none.
 */
function parseRfc3339(text: string): number | null {
  const match = RFC_3339.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const [fraction = '', sign, offsetHours = '0', offsetMinutes = '0'] = match.slice(7);
  const wall = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const read = new Date(wall);
  const exists =
    read.getUTCFullYear() === year &&
    read.getUTCMonth() === month! - 1 &&
    read.getUTCDate() === day &&
    read.getUTCHours() === hour &&
    read.getUTCMinutes() === minute &&
    read.getUTCSeconds() === second &&
    Number(offsetHours) <= 23 &&
    Number(offsetMinutes) <= 59;
  if (!exists) return null;
  const offset = (Number(offsetHours) * 60 + Number(offsetMinutes)) * 60_000;
  const millis = Math.floor(Number(`0${fraction}`) * 1000);
  // The wall time is `offset` ahead of UTC with `+`, behind it with `-`.
  return wall + millis + (sign === '-' ? offset : -offset);
}
