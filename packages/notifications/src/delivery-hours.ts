import { DAY, MINUTE } from 'offload';
import { addDays, instantOf, wallTime, weekdayOf, type WallTime } from './zoned-time.js';

/**
 * When a stored recipient takes deliveries: never in its quiet hours, and only inside its weekly
 * send window, both read in its own time zone. A delivery due outside is deferred to the moment
 * it is allowed (the quiet hours' end, the window's next opening), never dropped. A critical
 * notification is sent at once.
 */

/** `{"start": "22:00", "end": "07:00"}`: no delivery from start (included) to end (excluded). */
export interface QuietHours {
  start: string;
  end: string;
}

/** Deliveries only on `days`, from `start` (included) to `end` (excluded), e.g. 09:00 to 18:00. */
export interface SendWindow {
  days: Weekday[];
  start: string;
  end: string;
}

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** What of a recipient decides when it takes deliveries. */
export interface DeliveryHours {
  timezone: string | null;
  quietHours?: QuietHours | null;
  sendWindow?: SendWindow | null;
}

/** Why and until when a delivery waits. */
export interface Deferral {
  until: Date;
  by: 'quietHours' | 'sendWindow';
}

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/**
 * Reads `quietHours` and `sendWindow` of a recipient body whose `timezone` reads as `timezone`;
 * a problem names its field.
 */
export function readDeliveryHours(
  fields: Record<string, unknown>,
  timezone: string | null,
): { value: { quietHours: QuietHours | null; sendWindow: SendWindow | null } } | Problem {
  const quiet = readQuietHours(fields.quietHours);
  if ('problem' in quiet) return quiet;
  const window = readSendWindow(fields.sendWindow);
  if ('problem' in window) return window;
  if ((quiet.value !== null || window.value !== null) && timezone === null) {
    const field = quiet.value !== null ? 'quietHours' : 'sendWindow';
    return {
      field: 'timezone',
      problem: `${field} is read in the recipient's own time zone: give timezone too, e.g. "Europe/Berlin"`,
    };
  }
  if (quiet.value !== null && window.value !== null && covers(quiet.value, window.value)) {
    return {
      field: 'quietHours',
      problem: `quietHours ${quiet.value.start} to ${quiet.value.end} cover the whole sendWindow (${window.value.start} to ${window.value.end}), so no delivery could ever be sent: shorten one of them`,
    };
  }
  return { value: { quietHours: quiet.value, sendWindow: window.value } };
}

/** Whether every minute of the send window's hours falls in the quiet hours. */
function covers(quiet: QuietHours, window: SendWindow): boolean {
  const [start, end] = [minutes(quiet.start), minutes(quiet.end)];
  for (let minute = minutes(window.start); minute < minutes(window.end); minute += 1) {
    const inside = start < end ? minute >= start && minute < end : minute >= start || minute < end;
    if (!inside) return false;
  }
  return true;
}

interface Problem {
  field: string;
  problem: string;
}

function readQuietHours(value: unknown): { value: QuietHours | null } | Problem {
  if (value === undefined || value === null) return { value: null };
  const example = 'e.g. {"start": "22:00", "end": "07:00"}';
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { field: 'quietHours', problem: `quietHours must be an object, ${example}` };
  }
  const fields = value as Record<string, unknown>;
  const extra = Object.keys(fields).find((key) => key !== 'start' && key !== 'end');
  if (extra !== undefined) {
    return { field: `quietHours.${extra}`, problem: `quietHours takes start and end, ${example}` };
  }
  for (const name of ['start', 'end'] as const) {
    const problem = timeProblem(`quietHours.${name}`, fields[name]);
    if (problem !== null) return problem;
  }
  if (fields.start === fields.end) {
    return {
      field: 'quietHours.end',
      problem: `quietHours.end must differ from quietHours.start, ${example}; leave quietHours out for none`,
    };
  }
  return { value: { start: fields.start as string, end: fields.end as string } };
}

function readSendWindow(value: unknown): { value: SendWindow | null } | Problem {
  if (value === undefined || value === null) return { value: null };
  const example =
    'e.g. {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}';
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { field: 'sendWindow', problem: `sendWindow must be an object, ${example}` };
  }
  const fields = value as Record<string, unknown>;
  const extra = Object.keys(fields).find((key) => !['days', 'start', 'end'].includes(key));
  if (extra !== undefined) {
    return {
      field: `sendWindow.${extra}`,
      problem: `sendWindow takes days, start and end, ${example}`,
    };
  }
  const { days } = fields;
  if (
    !Array.isArray(days) ||
    days.length === 0 ||
    days.some((day) => !(WEEKDAYS as readonly unknown[]).includes(day)) ||
    new Set(days).size !== days.length
  ) {
    return {
      field: 'sendWindow.days',
      problem: `sendWindow.days must list weekdays, each once, of ${WEEKDAYS.join(', ')}; ${example}`,
    };
  }
  for (const name of ['start', 'end'] as const) {
    const problem = timeProblem(`sendWindow.${name}`, fields[name]);
    if (problem !== null) return problem;
  }
  if ((fields.start as string) >= (fields.end as string)) {
    return {
      field: 'sendWindow.end',
      problem: `sendWindow.end must be later in the day than sendWindow.start, ${example}`,
    };
  }
  const sorted = WEEKDAYS.filter((day) => days.includes(day));
  return { value: { days: sorted, start: fields.start as string, end: fields.end as string } };
}

function timeProblem(field: string, value: unknown): Problem | null {
  if (typeof value === 'string' && HH_MM.test(value)) return null;
  const got = typeof value === 'string' ? JSON.stringify(value.slice(0, 20)) : typeof value;
  return {
    field,
    problem: `${field} must be a time of day as "HH:MM" (00:00 to 23:59), got ${got}`,
  };
}

/**
 * When a delivery due at `due` may go to a recipient with `hours`: null when at once, else the
 * first allowed moment and which rule deferred it (the first that did).
 */
export function deferral(hours: DeliveryHours, due: Date): Deferral | null {
  const { timezone: zone } = hours;
  const quiet = hours.quietHours ?? null;
  const window = hours.sendWindow ?? null;
  if (zone === null || (quiet === null && window === null)) return null;
  let at = due.getTime();
  let by: Deferral['by'] | null = null;
  // Each step moves forward to a moment one rule allows; a few rounds settle both rules.
  for (let round = 0; round < 8; round += 1) {
    const quietEnd = quiet === null ? null : quietHoursEnd(quiet, at, zone);
    if (quietEnd !== null) {
      by ??= 'quietHours';
      at = quietEnd;
      continue;
    }
    const opens = window === null ? null : windowOpening(window, at, zone);
    if (opens !== null) {
      by ??= 'sendWindow';
      at = opens;
      continue;
    }
    break;
  }
  return by === null ? null : { until: new Date(at), by };
}

function minutes(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

/**
 * The instant of local `time` on local `date`, after `instant` whose wall time is `now` (minutes
 * of the day): inside an hour that repeats, a time of the same day may have first come before
 * `instant`; it comes again `time - now` minutes later.
 */
function at(
  zone: string,
  date: { year: number; month: number; day: number },
  time: string,
  instant: number,
  now: number,
): number {
  const t = minutes(time);
  const found = instantOf(zone, date.year, date.month, date.day, Math.floor(t / 60), t % 60);
  return found > instant ? found : instant + (t - now) * MINUTE;
}

/** When the quiet hours that `instant` falls in end, or null when it falls outside them. */
function quietHoursEnd(quiet: QuietHours, instant: number, zone: string): number | null {
  const wall = wallTime(instant, zone);
  const now = wall.hour * 60 + wall.minute;
  const [start, end] = [minutes(quiet.start), minutes(quiet.end)];
  if (start < end)
    return now >= start && now < end ? at(zone, wall, quiet.end, instant, now) : null;
  if (now >= start) return at(zone, addDays(wall, 1), quiet.end, instant, now - DAY / MINUTE);
  return now < end ? at(zone, wall, quiet.end, instant, now) : null;
}

/** When the send window next opens after `instant`, or null when `instant` falls inside it. */
function windowOpening(window: SendWindow, instant: number, zone: string): number | null {
  const wall: WallTime = wallTime(instant, zone);
  const now = wall.hour * 60 + wall.minute;
  const days = new Set(window.days.map((day) => WEEKDAYS.indexOf(day)));
  const [start, end] = [minutes(window.start), minutes(window.end)];
  if (days.has(wall.weekday) && now >= start && now < end) return null;
  for (let ahead = 0; ahead <= 7; ahead += 1) {
    const date = addDays(wall, ahead);
    if (!days.has(weekdayOf(date)) || (ahead === 0 && now >= start)) continue;
    return at(zone, date, window.start, instant, now - ahead * (DAY / MINUTE));
  }
  return null;
}
