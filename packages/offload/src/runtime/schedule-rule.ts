import { Cron } from 'croner';
import {
  describe,
  durationOption,
  integerOption,
  InvalidOptionError,
  MAX_DURATION,
  rejectUnknownKeys,
} from '../options-check.js';
import { MINUTE, SECOND } from '../time.js';

/**
 * What a schedule does about due times that passed while no process fired it (the service was
 * down, or every runtime stopped): `skip` runs none of them and waits for the next time, `one`
 * runs one now for all of them, `all` runs each of them now, up to `maxCatchUp`.
 */
export type CatchUp = 'skip' | 'one' | 'all';

export const CATCH_UP_POLICIES: readonly CatchUp[] = ['skip', 'one', 'all'];

interface CatchUpOptions {
  /** Default `skip`. */
  catchUp?: CatchUp;
  /** Most tasks one firing enqueues for one schedule, 1 to 1000; default 100. */
  maxCatchUp?: number;
}

/** Fires at the times of a cron expression, read in a time zone. */
export interface CronRule extends CatchUpOptions {
  /**
   * 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g.
   * `0 9 * * 1-5`; `@daily` and the other nicknames too.
   */
  cron: string;
  /** An IANA time zone, e.g. `Europe/Berlin`; default `UTC`. */
  timezone?: string;
}

/** Fires every `every` milliseconds (1 s at least), the first time `every` after it was set. */
export interface IntervalRule extends CatchUpOptions {
  every: number;
}

export type ScheduleRule = CronRule | IntervalRule;

/** When a schedule fires: what decides its due times, as stored. */
export type Timing = { cron: string; timezone: string } | { every: number };

/** A rule, checked, with its defaults filled in. */
export interface CheckedRule {
  timing: Timing;
  catchUp: CatchUp;
  maxCatchUp: number;
}

export const DEFAULT_MAX_CATCH_UP = 100;
const MAX_CATCH_UP_LIMIT = 1000;
/**
 * A due time counts as missed, for the catch-up policy, once the schedule fires more than this
 * after it: a schedule fired late by a restart or a busy store still runs every time it was due.
 */
export const MISSED_AFTER = MINUTE;

const RULE_KEYS = ['cron', 'timezone', 'every', 'catchUp', 'maxCatchUp'];

/** Checks a rule as given to `schedules.set`, naming the field that is wrong. */
export function checkRule(rule: unknown, where = 'schedule rule'): CheckedRule {
  rejectUnknownKeys(where, rule, RULE_KEYS);
  const given = rule as Partial<CronRule & IntervalRule>;
  const catchUp = given.catchUp ?? 'skip';
  if (!CATCH_UP_POLICIES.includes(catchUp)) {
    throw new InvalidOptionError(
      `${where}.catchUp`,
      `must be one of ${CATCH_UP_POLICIES.join(', ')}, got ${describe(catchUp)}`,
    );
  }
  const maxCatchUp = integerOption(
    `${where}.maxCatchUp`,
    given.maxCatchUp ?? DEFAULT_MAX_CATCH_UP,
    1,
    MAX_CATCH_UP_LIMIT,
  );
  return { timing: checkTiming(given, where), catchUp, maxCatchUp };
}

function checkTiming(given: Partial<CronRule & IntervalRule>, where: string): Timing {
  if (given.cron !== undefined && given.every !== undefined) {
    throw new InvalidOptionError(where, 'give cron or every, not both');
  }
  if (given.every !== undefined) {
    if (given.timezone !== undefined) {
      throw new InvalidOptionError(
        `${where}.timezone`,
        'is for cron rules; an interval (every) is the same in every time zone',
      );
    }
    const every = durationOption(`${where}.every`, given.every, SECOND, MAX_DURATION);
    if (!Number.isInteger(every)) {
      throw new InvalidOptionError(`${where}.every`, `must be whole milliseconds, got ${every}`);
    }
    return { every };
  }
  if (given.cron === undefined) {
    throw new InvalidOptionError(
      where,
      "needs cron (e.g. { cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' }) or every (e.g. { every: 5 * MINUTE })",
    );
  }
  const timezone = checkTimezone(given.timezone ?? 'UTC', `${where}.timezone`);
  return { cron: checkCron(given.cron, `${where}.cron`), timezone };
}

function checkCron(cron: unknown, field: string): string {
  if (typeof cron !== 'string' || cron.trim() === '') {
    throw new InvalidOptionError(
      field,
      `must be a cron expression such as "0 9 * * 1-5", got ${describe(cron)}`,
    );
  }
  const expression = cron.trim().replace(/\s+/g, ' ');
  try {
    cronOf(expression, 'UTC');
  } catch (error) {
    throw new InvalidOptionError(
      field,
      `${JSON.stringify(cron)} is not a cron expression (${(error as Error).message.replace(/^CronPattern: /, '')}): write 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), e.g. "0 9 * * 1-5"`,
    );
  }
  return expression;
}

/** An IANA time zone, as the runtime's Intl names it (so `utc` becomes `UTC`). */
function checkTimezone(timezone: unknown, field: string): string {
  if (typeof timezone === 'string' && timezone !== '') {
    try {
      return new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
    } catch {
      // Unknown: said below.
    }
  }
  throw new InvalidOptionError(
    field,
    `must be an IANA time zone such as "Europe/Berlin" or "UTC", got ${describe(timezone)}`,
  );
}

/** The due times of a timing, epoch milliseconds. */
export interface Clockwork {
  /** The first due time strictly after `after`, or null when there is none. */
  next(after: number): number | null;
  /**
   * The first due time strictly after `now` of the series that `from` is a due time of: an
   * interval keeps the times it started with rather than starting over from `now`.
   */
  following(from: number, now: number): number | null;
  /**
   * Due times from `from` (a due time) to `now`, in order: all of them when there are at most
   * `max`, else the last `max` with `overflow` set (earlier ones exist).
   */
  dueTimes(from: number, now: number, max: number): { times: number[]; overflow: boolean };
}

export function clockwork(timing: Timing): Clockwork {
  if ('every' in timing) {
    const { every } = timing;
    return {
      next: (after) => after + every,
      following: (from, now) =>
        from > now ? from : from + (Math.floor((now - from) / every) + 1) * every,
      dueTimes(from, now, max) {
        if (from > now) return { times: [], overflow: false };
        const count = Math.floor((now - from) / every) + 1;
        const first = Math.max(0, count - max);
        const times = Array.from({ length: count - first }, (_, i) => from + (first + i) * every);
        return { times, overflow: first > 0 };
      },
    };
  }
  const cron = cronOf(timing.cron, timing.timezone);
  const next = (after: number) => cron.nextRun(new Date(after))?.getTime() ?? null;
  return {
    next,
    following: (_from, now) => next(now),
    dueTimes(from, now, max) {
      const times: number[] = [];
      for (let t: number | null = from; t !== null && t <= now; t = next(t)) {
        if (times.length === max) {
          // Many missed: the last ones are read backwards rather than walked to one by one.
          const last = cron
            .previousRuns(max, new Date(now + 1))
            .map((date) => date.getTime())
            .filter((time) => time >= from)
            .reverse();
          return { times: last, overflow: true };
        }
        times.push(t);
      }
      return { times, overflow: false };
    },
  };
}

/**
 * Croner with daylight-saving time as Vixie cron handles it. A job is a fixed-time one when its
 * second, minute and hour fields hold no `*` (Vixie: its minute and hour fields do not start with
 * one): in a skipped hour it runs once right after the jump, in a repeated hour once. Other jobs
 * follow the wall clock: skipped with a skipped hour, run in both passes of a repeated one.
 * Croner's `no-wildcard` rule takes a stepped range (`0-30/15`) for a wildcard, where Vixie does
 * not; such ranges are written out as lists (`0,15,30`), which croner takes for fixed.
 */
function cronOf(expression: string, timezone: string): Cron {
  return new Cron(vixieFields(expression), {
    timezone,
    mode: '5-or-6-parts',
    fixedTimeRule: 'no-wildcard',
  });
}

function vixieFields(expression: string): string {
  const fields = expression.split(' ');
  // The time fields: minute and hour, after the seconds when there are six.
  const timeFields = fields.length === 6 ? 3 : fields.length === 5 ? 2 : 0;
  for (let i = 0; i < timeFields; i++) {
    const field = fields[i]!;
    if (/[*?]/.test(field)) continue;
    fields[i] = field.split(',').map(expandStepped).join(',');
  }
  return fields.join(' ');
}

/** `0-30/15` as `0,15,30`; anything else as it is (croner says what is wrong with it). */
function expandStepped(part: string): string {
  const match = /^(\d+)-(\d+)\/(\d+)$/.exec(part);
  if (!match) return part;
  const [from, to, step] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (step < 1 || from > to || to > 59) return part;
  const values: number[] = [];
  for (let value = from; value <= to; value += step) values.push(value);
  return values.join(',');
}

/** Reads a timing as stored; throws when it is not one (a row written by hand). */
export function parseTiming(text: string): Timing {
  const parsed = JSON.parse(text) as unknown;
  return checkRule(parsed, 'stored schedule rule').timing;
}
