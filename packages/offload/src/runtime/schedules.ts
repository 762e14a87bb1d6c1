import { OffloadError } from '../errors/offload-error.js';
import { decodePayload, encodePayload } from '../json.js';
import {
  describe,
  durationOption,
  integerOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import type { StoredSchedule, Store } from '../store/store.js';
import type { GroupOptions, Json, Task, TaskGroup } from '../types.js';
import {
  isTaskName,
  MAX_ATTEMPTS_LIMIT,
  type PayloadOf,
  type TaskDefinition,
} from './define-task.js';
import type { Events } from './events.js';
import type { Settings } from './options.js';
import { groupOf } from './groups.js';
import { checkPayload } from './payload-schema.js';
import {
  clockworkOf,
  encodeTiming,
  NO_FIRE,
  planFiring,
  type Missed,
  type StoredOptions,
} from './schedule-fire.js';
import { checkRule, type CatchUp, type ScheduleRule, type Timing } from './schedule-rule.js';

/** Options of the tasks a schedule enqueues; each overrides the task definition's. */
export interface ScheduleOptions {
  /** Higher runs first; default the definition's, else 0. */
  priority?: number;
  /** Default the definition's, else the runtime's. */
  maxAttempts?: number;
  /** Timeout of one attempt in milliseconds; default the definition's, else the runtime's. */
  timeout?: number;
  /** The group of its tasks (docs/limits.md); default the definition's, chosen from the payload. */
  group?: GroupOptions;
}

/** A schedule's rule as it is stored, defaults filled in. */
export type StoredRule = Timing & { catchUp: CatchUp; maxCatchUp: number };

/** A named, stored rule that enqueues a task at due times. */
export interface Schedule<P = Json> {
  name: string;
  rule: StoredRule;
  /** The name of the task it enqueues. */
  task: string;
  payload: P;
  options: {
    priority: number;
    maxAttempts: number;
    timeout: number | null;
    group: TaskGroup | null;
  };
  paused: boolean;
  /** When it is due next; null while paused (or when its rule has no later time). */
  nextRunAt: Date | null;
  /** The due time of the latest task it enqueued. */
  lastRunAt: Date | null;
  /** The latest task it enqueued. */
  lastTaskId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What the schedules need of the runtime they belong to. */
export interface ScheduleHost {
  /** Runs `read` once the store is open; refuses once the runtime has stopped. */
  whenOpen<T>(read: () => Promise<T>): Promise<T>;
  /** Throws when the runtime no longer takes tasks. */
  checkAccepting(): void;
  /** A schedule fired `task`: it may be due here. */
  fired(task: Task): void;
  /** A schedule was set or resumed: look for the earliest due time again. */
  changed(): void;
}

/** Schedules the runtime fires in one call, at most; more wait for the next call. */
const FIRE_BATCH = 100;

/** What one look for due schedules did. */
export interface FireOutcome {
  /** Tasks enqueued. */
  fired: number;
  /** Whether more schedules may be due now (a full batch was fired). */
  more: boolean;
  /** The earliest due time of the schedules that are not paused, or null. */
  nextRunAt: number | null;
  /** The time the look fired by. */
  now: number;
}

/**
 * `runtime.schedules`: named rules, kept in the store, that enqueue a task at due times. A
 * started runtime fires the due ones; every process sharing the store may, and each due time
 * fires once among them.
 */
export class Schedules {
  constructor(
    private readonly store: Store,
    private readonly settings: Settings,
    private readonly events: Events,
    private readonly host: ScheduleHost,
  ) {}

  /**
   * Creates the schedule `name`, or replaces it: idempotent, so an app may set its schedules each
   * time it starts. A replacement with the same times (cron and time zone, or interval) keeps
   * `nextRunAt`; other times take effect from now. A paused schedule stays paused.
   *
   * `task` is a definition given to `createRuntime({ tasks })`, or a task's name (which another
   * process may run). Options not given take the definition's, when this runtime has it.
   */
  async set<T extends TaskDefinition<never> | string>(
    name: string,
    rule: ScheduleRule,
    task: T,
    payload: PayloadOf<T>,
    options: ScheduleOptions = {},
  ): Promise<Schedule<PayloadOf<T>>> {
    checkScheduleName(name);
    const { timing, catchUp, maxCatchUp } = checkRule(rule);
    const definition = this.definitionOf(task);
    const taskName = typeof task === 'string' ? task : definition!.name;
    rejectUnknownKeys('schedule options', options, ['priority', 'maxAttempts', 'timeout', 'group']);
    const stored: StoredOptions = {
      priority: integerOption(
        'schedule options.priority',
        options.priority ?? definition?.priority ?? 0,
        -1000,
        1000,
      ),
      maxAttempts: integerOption(
        'schedule options.maxAttempts',
        options.maxAttempts ?? definition?.maxAttempts ?? this.settings.maxAttempts,
        1,
        MAX_ATTEMPTS_LIMIT,
      ),
      timeout:
        options.timeout === undefined
          ? null
          : durationOption('schedule options.timeout', options.timeout),
      group: groupOf(options.group, definition?.group, payload),
      catchUp,
      maxCatchUp,
    };
    const encoded = encodePayload(payload);
    // Every fire enqueues this payload: a schema refuses it now, not at each due time.
    if (definition !== undefined) await checkPayload(definition, payload);
    this.host.checkAccepting();
    const ruleText = encodeTiming(timing);
    const now = this.settings.clock.now();
    const nextRunAt = clockworkOf(ruleText).next(now);
    if (nextRunAt === null) {
      throw new InvalidOptionError(
        'schedule rule.cron',
        `${JSON.stringify((rule as { cron: string }).cron)} never matches a time from now on (a date such as February 30?)`,
      );
    }
    const schedule = await this.host.whenOpen(() =>
      this.store.setSchedule(
        {
          name,
          rule: ruleText,
          task: taskName,
          payload: encoded,
          options: JSON.stringify(stored),
          nextRunAt,
        },
        now,
      ),
    );
    this.host.changed();
    return scheduleView(schedule) as Schedule<PayloadOf<T>>;
  }

  /** The schedule `name`, or null. */
  async get(name: string): Promise<Schedule | null> {
    checkScheduleName(name);
    const schedule = await this.host.whenOpen(() => this.store.getSchedule(name));
    return schedule && scheduleView(schedule);
  }

  /** Every schedule, by name. */
  async list(): Promise<Schedule[]> {
    const schedules = await this.host.whenOpen(() => this.store.listSchedules());
    return schedules.map(scheduleView);
  }

  /** Stops firing the schedule until `resume`; its due times meanwhile are not run. */
  async pause(name: string): Promise<Schedule> {
    checkScheduleName(name);
    const now = this.settings.clock.now();
    const schedule = await this.host.whenOpen(() => this.store.pauseSchedule(name, now));
    if (!schedule) throw scheduleNotFound(name);
    return scheduleView(schedule);
  }

  /** Fires the schedule again, from its next time after now on. */
  async resume(name: string): Promise<Schedule> {
    checkScheduleName(name);
    const now = this.settings.clock.now();
    const schedule = await this.host.whenOpen(() =>
      this.store.resumeSchedule(name, now, (stored) => clockworkOf(stored.rule).next(now)),
    );
    if (!schedule) throw scheduleNotFound(name);
    this.host.changed();
    return scheduleView(schedule);
  }

  /** Deletes the schedule; false when there is none of that name. The tasks it fired stay. */
  async remove(name: string): Promise<boolean> {
    checkScheduleName(name);
    return this.host.whenOpen(() => this.store.removeSchedule(name));
  }

  /**
   * Fires the schedules due by the runtime's clock, now, whether or not the runtime started: for
   * tests that move a fake clock (then `drain()` runs the tasks). Resolves with how many tasks it
   * enqueued. A started runtime does this by itself.
   */
  async fireDue(): Promise<number> {
    let fired = 0;
    for (;;) {
      const outcome = await this.fireOnce();
      fired += outcome.fired;
      if (!outcome.more) return fired;
    }
  }

  /** One look for due schedules: fires up to a batch of them. */
  async fireOnce(): Promise<FireOutcome> {
    const now = this.settings.clock.now();
    const missed: { schedule: StoredSchedule; missed: Missed }[] = [];
    const failed: { schedule: StoredSchedule; error: unknown }[] = [];
    const result = await this.host.whenOpen(() =>
      this.store.fireSchedules({
        now,
        limit: FIRE_BATCH,
        plan: (schedule) => {
          try {
            const firing = planFiring(schedule, now);
            if (firing.missed) missed.push({ schedule, missed: firing.missed });
            return firing.plan;
          } catch (error) {
            // A rule this code cannot read (a row written by hand, or by a newer Offload): it
            // stops firing, and says so, rather than stopping every other schedule.
            failed.push({ schedule, error });
            return NO_FIRE;
          }
        },
      }),
    );
    for (const { schedule, error } of failed) {
      this.events.emit('runtime:error', {
        error,
        during: `firing schedule ${JSON.stringify(schedule.name)} (its stored rule cannot be read; set it again)`,
      });
    }
    for (const { schedule, missed: m } of missed) {
      this.events.emit('schedule:missed', {
        schedule: schedule.name,
        since: new Date(m.since),
        until: new Date(m.until),
      });
    }
    let fired = 0;
    for (const { schedule, results } of result.fired) {
      for (const { task, created } of results) {
        if (!created) continue;
        fired += 1;
        this.host.fired(task);
        this.events.emit('schedule:fire', { schedule: schedule.name, task });
      }
    }
    return { fired, more: result.fired.length === FIRE_BATCH, nextRunAt: result.nextRunAt, now };
  }

  private definitionOf(task: unknown): TaskDefinition<never> | undefined {
    if (typeof task === 'string') {
      if (!isTaskName(task)) {
        throw new InvalidOptionError(
          'schedule task',
          `must be a task definition or a task name (1 to 200 characters, no control characters), got ${JSON.stringify(task)}`,
        );
      }
      return this.settings.tasks.get(task) as TaskDefinition<never> | undefined;
    }
    const name = (task as { name?: unknown } | null)?.name;
    const definition = typeof name === 'string' ? this.settings.tasks.get(name) : undefined;
    if (definition !== undefined && definition === task) return task as TaskDefinition<never>;
    throw new InvalidOptionError(
      'schedule task',
      definition === undefined && isTaskName(name)
        ? `the definition of ${JSON.stringify(name)} was not given to this runtime; add it to createRuntime({ tasks }), or give its name (${JSON.stringify(name)}) if another process runs it`
        : `must be a definition given to createRuntime({ tasks }), or a task's name, got ${typeof task === 'object' ? 'another object' : describe(task)}`,
    );
  }
}

/** A schedule as the API shows it. */
export function scheduleView(stored: StoredSchedule): Schedule {
  const options = JSON.parse(stored.options) as StoredOptions;
  const timing = JSON.parse(stored.rule) as Timing;
  return {
    name: stored.name,
    rule: { ...timing, catchUp: options.catchUp, maxCatchUp: options.maxCatchUp },
    task: stored.task,
    payload: decodePayload(stored.payload).payload as Json,
    options: {
      priority: options.priority,
      maxAttempts: options.maxAttempts,
      timeout: options.timeout,
      group: options.group ?? null,
    },
    paused: stored.paused,
    nextRunAt: date(stored.nextRunAt),
    lastRunAt: date(stored.lastRunAt),
    lastTaskId: stored.lastTaskId,
    createdAt: new Date(stored.createdAt),
    updatedAt: new Date(stored.updatedAt),
  };
}

function date(time: number | null): Date | null {
  return time === null ? null : new Date(time);
}

/** Schedule names are task names' kind of text: 1 to 200 characters, no control characters. */
export function checkScheduleName(name: unknown): asserts name is string {
  if (!isTaskName(name)) {
    throw new InvalidOptionError(
      'schedule name',
      `must be a string of 1 to 200 characters without leading or trailing spaces, control characters or unpaired surrogates, got ${JSON.stringify(name)}`,
    );
  }
}

export function scheduleNotFound(name: string): OffloadError {
  return new OffloadError(
    'SCHEDULE_NOT_FOUND',
    `no schedule is named ${JSON.stringify(name)}; list them with runtime.schedules.list() or offload schedules list`,
  );
}
