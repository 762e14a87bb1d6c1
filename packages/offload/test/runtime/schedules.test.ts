import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { z } from 'zod';
import {
  createRuntime,
  defineTask,
  InvalidOptionError,
  InvalidPayloadError,
  MINUTE,
  SECOND,
  memoryStore,
  type Runtime,
  type RuntimeEvents,
  type ScheduleRule,
  type Task,
} from '../../src/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { captureLogger, fakeClock, memoryRuntimes, nextEvent, tempDir } from '../helpers.js';

const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const makeRuntime = memoryRuntimes();

const report = defineTask<{ kind: string }>({ name: 'report', run: () => undefined, priority: 3 });

/** A clock that can also be set to a moment. */
function clockAt(start: number) {
  const clock = fakeClock(start);
  return Object.assign(clock, { set: (at: number) => clock.advance(at - clock.now()) });
}

/** The tasks fired, in order, as events tell. */
function firedTasks(runtime: Runtime): RuntimeEvents['schedule:fire'][] {
  const fired: RuntimeEvents['schedule:fire'][] = [];
  runtime.on('schedule:fire', (event) => void fired.push(event));
  return fired;
}

/** `at` as a wall clock time in Berlin, e.g. `2026-03-29 03:00:00`. */
function berlin(at: number | Date): string {
  return new Date(at).toLocaleString('sv-SE', { timeZone: 'Europe/Berlin' });
}

describe('schedules: set, get, list, pause, resume, remove', () => {
  it('sets a schedule that reports its next run, and reads it back', async () => {
    const clock = clockAt(Date.UTC(2026, 0, 5, 7, 0)); // a Monday, 08:00 in Berlin
    const runtime = makeRuntime({ clock, tasks: [report] });
    const schedule = await runtime.schedules.set(
      'weekday-report',
      { cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' },
      report,
      { kind: 'daily' },
      { maxAttempts: 2 },
    );
    assert.deepEqual(schedule, {
      name: 'weekday-report',
      rule: { cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', catchUp: 'skip', maxCatchUp: 100 },
      task: 'report',
      payload: { kind: 'daily' },
      options: { priority: 3, maxAttempts: 2, timeout: null, group: null },
      paused: false,
      nextRunAt: new Date(Date.UTC(2026, 0, 5, 8, 0)),
      lastRunAt: null,
      lastTaskId: null,
      createdAt: new Date(clock.now()),
      updatedAt: new Date(clock.now()),
    });
    assert.deepEqual(await runtime.schedules.get('weekday-report'), schedule);
    assert.deepEqual(await runtime.schedules.list(), [schedule]);
    assert.equal(await runtime.schedules.get('other'), null);
  });

  it('is idempotent: the same times keep the next run, new times take effect from now', async () => {
    const clock = clockAt(Date.UTC(2026, 0, 1));
    const runtime = makeRuntime({ clock });
    const first = await runtime.schedules.set('poll', { every: 5 * MINUTE }, 'poll', {});
    clock.advance(2 * MINUTE);
    const again = await runtime.schedules.set(
      'poll',
      { every: 5 * MINUTE, catchUp: 'all' },
      'poll',
      { v: 2 },
    );
    assert.deepEqual(again.nextRunAt, first.nextRunAt, 'a deploy that sets it again moves nothing');
    assert.deepEqual([again.payload, again.rule.catchUp], [{ v: 2 }, 'all']);
    const changed = await runtime.schedules.set('poll', { every: 10 * MINUTE }, 'poll', {});
    assert.deepEqual(changed.nextRunAt, new Date(clock.now() + 10 * MINUTE));
  });

  it('pauses, resumes from the next time after now, and removes', async () => {
    const clock = clockAt(Date.UTC(2026, 0, 1));
    const runtime = makeRuntime({ clock });
    await runtime.schedules.set('tick', { cron: '*/10 * * * *' }, 'tick', null);
    const paused = await runtime.schedules.pause('tick');
    assert.deepEqual([paused.paused, paused.nextRunAt], [true, null]);
    clock.advance(HOUR + 5 * MINUTE);
    assert.equal(await runtime.schedules.fireDue(), 0, 'a paused schedule does not fire');
    const resumed = await runtime.schedules.resume('tick');
    assert.deepEqual(
      [resumed.paused, resumed.nextRunAt],
      [false, new Date(Date.UTC(2026, 0, 1, 1, 10))],
      'what was due while paused is not run',
    );
    assert.equal(await runtime.schedules.remove('tick'), true);
    assert.equal(await runtime.schedules.remove('tick'), false);
    await assert.rejects(runtime.schedules.pause('tick'), { code: 'SCHEDULE_NOT_FOUND' });
    await assert.rejects(runtime.schedules.resume('tick'), /no schedule is named "tick"/);
  });

  it('refuses a bad rule, task or option with an InvalidOptionError naming the field', async () => {
    const runtime = makeRuntime({ tasks: [report] });
    const cases: [ScheduleRule | unknown, RegExp][] = [
      [{ cron: '61 * * * *' }, /^schedule rule\.cron: "61 \* \* \* \*" is not a cron expression/],
      [{ cron: '* * * *' }, /^schedule rule\.cron: .*write 5 fields/],
      [{ cron: '0 0 30 2 *' }, /^schedule rule\.cron: .*never matches/],
      [
        { cron: '0 9 * * *', timezone: 'Mars/Olympus' },
        /^schedule rule\.timezone: must be an IANA/,
      ],
      [{ every: 500 }, /^schedule rule\.every: must be a number of milliseconds from 1000/],
      [{ every: 1500.5 }, /^schedule rule\.every: must be whole milliseconds/],
      [{ every: SECOND, timezone: 'UTC' }, /^schedule rule\.timezone: is for cron rules/],
      [{ every: SECOND, cron: '* * * * *' }, /^schedule rule: give cron or every, not both/],
      [{}, /^schedule rule: needs cron .* or every/],
      [
        { every: SECOND, catchUp: 'some' },
        /^schedule rule\.catchUp: must be one of skip, one, all/,
      ],
      [{ every: SECOND, maxCatchUp: 0 }, /^schedule rule\.maxCatchUp: must be a whole number/],
      [
        { every: SECOND, cathcUp: 'one' },
        /^schedule rule\.cathcUp: is not an option; did you mean "catchUp"/,
      ],
    ];
    for (const [rule, message] of cases) {
      await assert.rejects(
        runtime.schedules.set('s', rule as ScheduleRule, 'report', {}),
        (error: Error) => error instanceof InvalidOptionError && message.test(error.message),
        JSON.stringify(rule),
      );
    }
    const other = defineTask({ name: 'other', run: () => undefined });
    await assert.rejects(runtime.schedules.set('s', { every: SECOND }, other, {}), {
      message: /^schedule task: the definition of "other" was not given to this runtime/,
    });
    await assert.rejects(runtime.schedules.set('', { every: SECOND }, 'report', {}), {
      message: /^schedule name: must be a string of 1 to 200 characters/,
    });
    await assert.rejects(
      runtime.schedules.set('s', { every: SECOND }, 'report', {}, { key: 'k' } as never),
      { message: /^schedule options\.key: is not an option/ },
    );
    await assert.rejects(
      runtime.schedules.set('s', { every: SECOND }, 'report', {}, { priority: 1.5 }),
      { message: /^schedule options\.priority: must be a whole number/ },
    );
    await assert.rejects(runtime.schedules.set('s', { every: SECOND }, 'report', { n: 1n }), {
      code: 'INVALID_PAYLOAD',
    });
    assert.deepEqual(await runtime.schedules.list(), [], 'nothing bad was stored');
  });

  it("enqueues its tasks in the definition's group, chosen from the payload", async () => {
    const clock = clockAt(Date.UTC(2026, 0, 1));
    const sync = defineTask<{ tenant: number }>({
      name: 'sync',
      group: ({ tenant }) => ({ key: `tenant:${tenant}`, concurrency: 1 }),
      run: () => undefined,
    });
    const runtime = makeRuntime({ clock, tasks: [sync] });
    const set = await runtime.schedules.set('sync-7', { every: MINUTE }, sync, { tenant: 7 });
    const group = { key: 'tenant:7', concurrency: 1, rate: null };
    assert.deepEqual(set.options.group, group);
    clock.advance(MINUTE);
    assert.equal(await runtime.schedules.fireDue(), 1);
    const [task] = (await runtime.list({ name: 'sync' })).tasks;
    assert.deepEqual(task?.group, group);
  });

  it("checks the payload against the task's schema when the schedule is set", async () => {
    const digest = defineTask({
      name: 'digest',
      schema: z.object({ team: z.string().min(1) }),
      run: () => undefined,
    });
    const runtime = makeRuntime({ tasks: [digest] });
    await assert.rejects(
      runtime.schedules.set('daily', { cron: '0 8 * * *' }, digest, { team: '' }),
      (error: Error) => error instanceof InvalidPayloadError && /payload\.team/.test(error.message),
    );
    assert.equal(await runtime.schedules.get('daily'), null);
    const set = await runtime.schedules.set('daily', { cron: '0 8 * * *' }, digest, { team: 'a' });
    assert.deepEqual(set.payload, { team: 'a' });
  });
});

describe('schedules: firing', () => {
  it('enqueues the task with its payload and options at each due time, once', async () => {
    const clock = clockAt(Date.UTC(2026, 0, 1));
    const ran: { kind: string }[] = [];
    const task = defineTask<{ kind: string }>({ name: 'report', run: (p) => void ran.push(p) });
    const runtime = makeRuntime({ clock, tasks: [task] });
    const fired = firedTasks(runtime);
    await runtime.schedules.set('r', { every: 5 * MINUTE }, task, { kind: 'x' }, { priority: 7 });
    assert.equal(await runtime.schedules.fireDue(), 0, 'not due yet');
    clock.advance(5 * MINUTE);
    assert.equal(await runtime.schedules.fireDue(), 1);
    assert.equal(await runtime.schedules.fireDue(), 0, 'a due time fires once');
    await runtime.drain();
    assert.deepEqual(ran, [{ kind: 'x' }]);
    const [{ schedule, task: stored }] = fired as [RuntimeEvents['schedule:fire']];
    assert.equal(schedule, 'r');
    assert.deepEqual(
      [stored.priority, stored.key, stored.runAt.getTime()],
      [7, `schedule:r:${clock.now()}`, clock.now()],
    );
    const after = await runtime.schedules.get('r');
    assert.deepEqual(
      [after?.lastRunAt, after?.lastTaskId, after?.nextRunAt],
      [new Date(clock.now()), stored.id, new Date(clock.now() + 5 * MINUTE)],
    );
  });

  it('fires on its own while started, and stops with the runtime', async () => {
    const runtime = makeRuntime({});
    await runtime.start();
    const first = nextEvent(runtime, 'schedule:fire', 5000);
    await runtime.schedules.set('every-second', { cron: '* * * * * *' }, 'elsewhere', { n: 1 });
    const { task } = await first;
    assert.equal(task.name, 'elsewhere');
    assert.match(task.key ?? '', /^schedule:every-second:\d+000$/);
    const second = await nextEvent(runtime, 'schedule:fire', 5000);
    assert.ok(second.task.runAt > task.runAt);
    await runtime.stop();
  });

  it('fires a schedule another process set in the store, looking at least every pollInterval', async () => {
    const temp = tempDir();
    const path = join(temp.dir, 'offload.db');
    const firing = createRuntime({ store: sqliteStore({ path }), logger: captureLogger() });
    const setting = createRuntime({ store: sqliteStore({ path }), logger: captureLogger() });
    try {
      await firing.start();
      const fired = nextEvent(firing, 'schedule:fire', 5000);
      await setting.schedules.set('from-elsewhere', { cron: '* * * * * *' }, 'job', null);
      assert.equal((await fired).schedule, 'from-elsewhere');
    } finally {
      await setting.stop();
      await firing.stop();
      temp.remove();
    }
  });

  it('reports a stored rule it cannot read, and goes on firing the others', async () => {
    const temp = tempDir();
    const path = join(temp.dir, 'offload.db');
    const clock = clockAt(Date.UTC(2026, 0, 1));
    const runtime = createRuntime({ store: sqliteStore({ path }), clock, logger: captureLogger() });
    try {
      const errors: RuntimeEvents['runtime:error'][] = [];
      runtime.on('runtime:error', (event) => void errors.push(event));
      await runtime.schedules.set('good', { every: MINUTE }, 'job', null);
      await runtime.schedules.set('bad', { every: MINUTE }, 'job', null);
      const raw = new Database(path);
      raw
        .prepare(`UPDATE offload_schedules SET rule = ? WHERE name = 'bad'`)
        .run('{"cron":"not cron","timezone":"UTC"}');
      raw.close();
      clock.advance(MINUTE);
      assert.equal(await runtime.schedules.fireDue(), 1);
      assert.deepEqual(
        errors.map((e) => e.during),
        ['firing schedule "bad" (its stored rule cannot be read; set it again)'],
      );
      assert.equal((await runtime.schedules.get('bad'))?.nextRunAt, null, 'it fires no more');
      const fixed = await runtime.schedules.set('bad', { every: MINUTE }, 'job', null);
      assert.deepEqual(fixed.nextRunAt, new Date(clock.now() + MINUTE), 'until it is set again');
    } finally {
      await runtime.stop();
      temp.remove();
    }
  });
});

/** The due times (in Berlin) at which a rule fires from `from` until `until`, firing on time. */
async function berlinRuns(rule: ScheduleRule, from: string, until: string): Promise<string[]> {
  const clock = clockAt(Date.parse(from));
  const runtime = createRuntime({ store: memoryStore(), clock, logger: captureLogger() });
  try {
    const fired = firedTasks(runtime);
    await runtime.schedules.set('dst', rule, 'job', null);
    for (;;) {
      const next = (await runtime.schedules.get('dst'))!.nextRunAt!.getTime();
      if (next > Date.parse(until)) break;
      clock.set(next);
      await runtime.schedules.fireDue();
    }
    return fired.map(
      ({ task }) => `${berlin(task.runAt)} ${task.runAt.toISOString().slice(11, 16)}Z`,
    );
  } finally {
    await runtime.stop();
  }
}

describe('schedules: daylight-saving time in Europe/Berlin, as Vixie cron', () => {
  const tz = 'Europe/Berlin';
  // Spring: on 2026-03-29 the clock jumps from 02:00 to 03:00.
  const spring = ['2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'] as const;
  // Autumn: on 2026-10-25 it goes back from 03:00 to 02:00; 02:00–02:59 happens twice.
  const autumn = ['2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z'] as const;

  it('spring: a fixed time in the skipped hour runs once, right after the jump', async () => {
    assert.deepEqual(await berlinRuns({ cron: '30 2 * * *', timezone: tz }, ...spring), [
      '2026-03-29 03:00:00 01:00Z',
      '2026-03-30 02:30:00 00:30Z',
    ]);
    // A list or a stepped range is fixed too (Vixie: no field starts with *): once, not skipped.
    assert.deepEqual(await berlinRuns({ cron: '0-30/15 2 * * *', timezone: tz }, ...spring), [
      '2026-03-29 03:00:00 01:00Z',
      '2026-03-30 02:00:00 00:00Z',
      '2026-03-30 02:15:00 00:15Z',
      '2026-03-30 02:30:00 00:30Z',
    ]);
    assert.deepEqual(await berlinRuns({ cron: '0 3 * * *', timezone: tz }, ...spring), [
      '2026-03-29 03:00:00 01:00Z',
      '2026-03-30 03:00:00 01:00Z',
    ]);
  });

  it('spring: a wildcard-hour job follows the wall clock and skips the missing hour', async () => {
    const runs = await berlinRuns(
      { cron: '*/30 * * * *', timezone: tz },
      '2026-03-29T00:15:00Z',
      '2026-03-29T01:45:00Z',
    );
    assert.deepEqual(runs, [
      '2026-03-29 01:30:00 00:30Z',
      '2026-03-29 03:00:00 01:00Z',
      '2026-03-29 03:30:00 01:30Z',
    ]);
  });

  it('autumn: a fixed time in the repeated hour runs once, not twice', async () => {
    assert.deepEqual(await berlinRuns({ cron: '30 2 * * *', timezone: tz }, ...autumn), [
      '2026-10-25 02:30:00 00:30Z',
      '2026-10-26 02:30:00 01:30Z',
    ]);
    assert.deepEqual(
      await berlinRuns(
        { cron: '0-30/15 2 * * *', timezone: tz },
        '2026-10-24T23:00:00Z',
        '2026-10-25T12:00:00Z',
      ),
      ['2026-10-25 02:00:00 00:00Z', '2026-10-25 02:15:00 00:15Z', '2026-10-25 02:30:00 00:30Z'],
    );
  });

  it('autumn: a wildcard-hour job follows the wall clock and runs in both passes', async () => {
    const runs = await berlinRuns(
      { cron: '*/30 * * * *', timezone: tz },
      '2026-10-24T23:45:00Z',
      '2026-10-25T02:00:00Z',
    );
    assert.deepEqual(runs, [
      '2026-10-25 02:00:00 00:00Z',
      '2026-10-25 02:30:00 00:30Z',
      '2026-10-25 02:00:00 01:00Z',
      '2026-10-25 02:30:00 01:30Z',
      '2026-10-25 03:00:00 02:00Z',
    ]);
  });
});

describe('schedules: catch-up after a stopped period', () => {
  const start = Date.UTC(2026, 0, 1);

  /** Fires after every process was stopped for `downtime`; the due times of the tasks fired. */
  async function afterDowntime(rule: ScheduleRule, downtime: number) {
    const clock = clockAt(start);
    const runtime = makeRuntime({ clock });
    const fired = firedTasks(runtime);
    const missed: RuntimeEvents['schedule:missed'][] = [];
    runtime.on('schedule:missed', (event) => void missed.push(event));
    await runtime.schedules.set('catch', rule, 'job', null);
    clock.advance(downtime);
    await runtime.schedules.fireDue();
    const offsets = (times: Date[]) => times.map((t) => (t.getTime() - start) / MINUTE);
    return {
      runs: offsets(fired.map(({ task }) => task.runAt)),
      missed: missed.map((m) => offsets([m.since, m.until])),
      next: offsets([(await runtime.schedules.get('catch'))!.nextRunAt!])[0],
    };
  }

  it('skip (the default) runs none of the missed times, and the next one on time', async () => {
    assert.deepEqual(await afterDowntime({ every: 10 * MINUTE }, 65 * MINUTE), {
      runs: [],
      missed: [[10, 60]],
      next: 70,
    });
    // Less than a minute late is not missed: a restart at the due time still runs it.
    assert.deepEqual(await afterDowntime({ every: 10 * MINUTE }, 10.5 * MINUTE), {
      runs: [10],
      missed: [],
      next: 20,
    });
  });

  it('one runs one task now, at the latest due time, for everything missed', async () => {
    assert.deepEqual(await afterDowntime({ every: 10 * MINUTE, catchUp: 'one' }, 65 * MINUTE), {
      runs: [60],
      missed: [[10, 50]],
      next: 70,
    });
  });

  it('all runs every missed time, the latest maxCatchUp of them', async () => {
    assert.deepEqual(await afterDowntime({ every: 10 * MINUTE, catchUp: 'all' }, 65 * MINUTE), {
      runs: [10, 20, 30, 40, 50, 60],
      missed: [],
      next: 70,
    });
    assert.deepEqual(
      await afterDowntime({ every: 10 * MINUTE, catchUp: 'all', maxCatchUp: 4 }, 65 * MINUTE),
      { runs: [30, 40, 50, 60], missed: [[10, 20]], next: 70 },
    );
    // Days of every-second times: only the last ones are looked at, not walked to one by one.
    const { runs, missed, next } = await afterDowntime(
      { cron: '* * * * * *', catchUp: 'all', maxCatchUp: 3 },
      3 * DAY,
    );
    const end = (3 * DAY) / MINUTE;
    assert.deepEqual(runs, [end - 2 / 60, end - 1 / 60, end]);
    assert.deepEqual(missed, [[1 / 60, end - 3 / 60]]);
    assert.equal(next, end + 1 / 60);
  });

  it('keeps its due times across a restart on a durable store', async () => {
    const temp = tempDir();
    const path = join(temp.dir, 'offload.db');
    const clock = clockAt(Date.UTC(2026, 0, 5, 7, 0));
    try {
      const before = createRuntime({
        store: sqliteStore({ path }),
        clock,
        logger: captureLogger(),
      });
      await before.schedules.set('daily', { cron: '0 9 * * *', catchUp: 'all' }, 'job', { d: 1 });
      await before.stop();
      clock.advance(3 * DAY);
      const after = createRuntime({ store: sqliteStore({ path }), clock, logger: captureLogger() });
      try {
        assert.equal(await after.schedules.fireDue(), 3);
        const page = await after.list({ keyPrefix: 'schedule:daily:' });
        assert.deepEqual(page.tasks.map((t: Task) => t.runAt.toISOString()).sort(), [
          '2026-01-05T09:00:00.000Z',
          '2026-01-06T09:00:00.000Z',
          '2026-01-07T09:00:00.000Z',
        ]);
      } finally {
        await after.stop();
      }
    } finally {
      temp.remove();
    }
  });
});
