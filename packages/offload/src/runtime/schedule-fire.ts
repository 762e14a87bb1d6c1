import { scheduleTaskKey, type FirePlan, type StoredSchedule } from '../store/store.js';
import type { TaskGroup } from '../types.js';
import {
  clockwork,
  MISSED_AFTER,
  parseTiming,
  type CatchUp,
  type Clockwork,
  type Timing,
} from './schedule-rule.js';

/** What a schedule stores besides its rule: its tasks' options and its catch-up policy. */
export interface StoredOptions {
  priority: number;
  maxAttempts: number;
  /** Null: the definition's timeout, or the runtime's. */
  timeout: number | null;
  /** Absent in a schedule stored without one. */
  group?: TaskGroup | null;
  catchUp: CatchUp;
  maxCatchUp: number;
}

/** Due times a firing did not run (its catch-up policy), first and last. */
export interface Missed {
  since: number;
  until: number;
}

export interface Firing {
  plan: FirePlan;
  missed: Missed | null;
}

/** The plan of a schedule whose rule cannot be read: it fires nothing, and no more. */
export const NO_FIRE: FirePlan = { tasks: [], lastRunAt: null, nextRunAt: null };

/**
 * Clockworks by stored rule: the firing loop reads the same rules again and again, and parsing a
 * cron expression costs more than finding its next time.
 */
const clockworks = new Map<string, Clockwork>();
const CACHED_RULES = 1000;

export function clockworkOf(rule: string): Clockwork {
  let found = clockworks.get(rule);
  if (!found) {
    if (clockworks.size >= CACHED_RULES) clockworks.clear();
    found = clockwork(parseTiming(rule));
    clockworks.set(rule, found);
  }
  return found;
}

export function encodeTiming(timing: Timing): string {
  // Keys in one order: an unchanged rule is the same text, and keeps its due time when set again.
  return JSON.stringify(
    'every' in timing ? { every: timing.every } : { cron: timing.cron, timezone: timing.timezone },
  );
}

/**
 * What firing `schedule` at `now` enqueues, by its catch-up policy. Due times within
 * MISSED_AFTER of `now` are on time: each of them runs whatever the policy. Older ones were
 * missed: `skip` runs none of them, `one` runs one task (at the latest due time) for everything
 * due, `all` runs each. At most `maxCatchUp` tasks, the latest due. Throws when the stored rule
 * or options cannot be read.
 */
export function planFiring(schedule: StoredSchedule, now: number): Firing {
  const from = schedule.nextRunAt;
  const clock = clockworkOf(schedule.rule);
  const options = JSON.parse(schedule.options) as StoredOptions;
  if (from === null || from > now) {
    return {
      plan: { tasks: [], lastRunAt: null, nextRunAt: from ?? clock.next(now) },
      missed: null,
    };
  }
  const next = clock.following(from, now);
  // One more than may run: the one before the runs, if not run, is the last missed.
  const { times, overflow } = clock.dueTimes(from, now, options.maxCatchUp + 1);
  const onTime = times.filter((time) => time >= now - MISSED_AFTER);
  const late = overflow || onTime.length < times.length;
  let run: number[];
  if (!late || options.catchUp === 'skip') run = onTime;
  else if (options.catchUp === 'one') run = times.slice(-1);
  else run = times;
  run = run.slice(-options.maxCatchUp);
  const notRun = times.filter((time) => !run.includes(time));
  const missed =
    notRun.length > 0 || overflow ? { since: from, until: notRun.at(-1) ?? from } : null;
  const tasks = run.map((dueAt) => ({
    name: schedule.task,
    payload: schedule.payload,
    priority: options.priority,
    maxAttempts: options.maxAttempts,
    timeout: options.timeout,
    key: scheduleTaskKey(schedule.name, dueAt),
    group: options.group ?? null,
    runAt: dueAt,
    createdAt: now,
    trace: null,
  }));
  return { plan: { tasks, lastRunAt: run.at(-1) ?? null, nextRunAt: next }, missed };
}
