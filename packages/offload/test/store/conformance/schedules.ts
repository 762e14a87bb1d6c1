import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  scheduleTaskKey,
  type FirePlan,
  type NewSchedule,
  type StoredSchedule,
  type Store,
} from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { newTask, useStore, type MakeStore } from './harness.js';

const MINUTE = 60_000;

function newSchedule(overrides: Partial<NewSchedule> = {}): NewSchedule {
  return {
    name: 'nightly',
    rule: '{"every":60000}',
    task: 'email',
    payload: '{"to":"a@example.com"}',
    options: '{"priority":0}',
    nextRunAt: T0 + MINUTE,
    ...overrides,
  };
}

/** A plan that enqueues one `email` task per due time, keyed as the runtime keys them. */
function fireAt(dueTimes: number[], nextRunAt: number | null, now = T0) {
  return (schedule: StoredSchedule): FirePlan => ({
    tasks: dueTimes.map((dueAt) =>
      newTask({
        key: scheduleTaskKey(schedule.name, dueAt),
        runAt: dueAt,
        createdAt: now,
        data: { from: schedule.name },
      }),
    ),
    lastRunAt: dueTimes.at(-1) ?? null,
    nextRunAt,
  });
}

export function describeSchedules(makeStore: MakeStore): void {
  describe('schedules', () => {
    const { store, claim, mustGet } = useStore(makeStore);

    it('sets a schedule, reads it back and lists schedules by name', async () => {
      const set = await store.setSchedule(newSchedule(), T0);
      const expected: StoredSchedule = {
        name: 'nightly',
        rule: '{"every":60000}',
        task: 'email',
        payload: '{"to":"a@example.com"}',
        options: '{"priority":0}',
        paused: false,
        nextRunAt: T0 + MINUTE,
        lastRunAt: null,
        lastTaskId: null,
        createdAt: T0,
        updatedAt: T0,
      };
      assert.deepEqual(set, expected);
      assert.deepEqual(await store.getSchedule('nightly'), expected);
      await store.setSchedule(newSchedule({ name: 'hourly' }), T0);
      await store.setSchedule(newSchedule({ name: 'Zulu' }), T0);
      assert.deepEqual(
        (await store.listSchedules()).map((s) => s.name),
        ['Zulu', 'hourly', 'nightly'],
        'by name, in code point order',
      );
      assert.equal(await store.getSchedule('missing'), null);
    });

    it('replaces a schedule, keeping its next run while its rule is unchanged', async () => {
      await store.setSchedule(newSchedule(), T0);
      const same = await store.setSchedule(
        newSchedule({ task: 'sms', payload: '{"n":2}', options: '{"priority":5}', nextRunAt: 0 }),
        T0 + 10,
      );
      assert.deepEqual(
        [same.task, same.payload, same.options, same.nextRunAt, same.createdAt, same.updatedAt],
        ['sms', '{"n":2}', '{"priority":5}', T0 + MINUTE, T0, T0 + 10],
      );
      const changed = await store.setSchedule(
        newSchedule({ rule: '{"every":5000}', nextRunAt: T0 + 5020 }),
        T0 + 20,
      );
      assert.equal(changed.nextRunAt, T0 + 5020, 'a new rule takes the new next run');
      assert.equal(changed.rule, '{"every":5000}');
    });

    it('pauses and resumes; a replacement keeps a paused schedule paused', async () => {
      await store.setSchedule(newSchedule(), T0);
      const paused = await store.pauseSchedule('nightly', T0 + 1);
      assert.deepEqual(
        [paused?.paused, paused?.nextRunAt, paused?.updatedAt],
        [true, null, T0 + 1],
      );
      assert.deepEqual(await store.pauseSchedule('nightly', T0 + 2), paused, 'twice is once');
      const replaced = await store.setSchedule(newSchedule({ rule: '{"every":2000}' }), T0 + 3);
      assert.deepEqual([replaced.paused, replaced.nextRunAt], [true, null]);

      const seen: StoredSchedule[] = [];
      const resumed = await store.resumeSchedule('nightly', T0 + 4, (schedule) => {
        seen.push(schedule);
        return T0 + 2004;
      });
      assert.deepEqual(
        seen.map((s) => [s.rule, s.paused]),
        [['{"every":2000}', true]],
        'next() reads the schedule as stored',
      );
      assert.deepEqual(
        [resumed?.paused, resumed?.nextRunAt, resumed?.updatedAt],
        [false, T0 + 2004, T0 + 4],
      );
      const again = await store.resumeSchedule('nightly', T0 + 5, () => {
        throw new Error('a schedule that is not paused is not resumed');
      });
      assert.deepEqual(again, resumed);
      assert.equal(await store.pauseSchedule('missing', T0), null);
      assert.equal(await store.resumeSchedule('missing', T0, () => T0), null);
    });

    it('removes a schedule; the tasks it fired stay', async () => {
      await store.setSchedule(newSchedule({ nextRunAt: T0 }), T0 - 1);
      const { fired } = await store.fireSchedules({
        now: T0,
        limit: 10,
        plan: fireAt([T0], T0 + MINUTE),
      });
      assert.equal(await store.removeSchedule('nightly'), true);
      assert.equal(await store.removeSchedule('nightly'), false);
      assert.equal(await store.getSchedule('nightly'), null);
      assert.deepEqual(await store.listSchedules(), []);
      await mustGet(fired[0]!.results[0]!.task.id);
    });

    it('fires a due schedule: enqueues its tasks and advances it, in one call', async () => {
      await store.setSchedule(newSchedule({ nextRunAt: T0 - MINUTE }), T0 - 2 * MINUTE);
      await store.setSchedule(newSchedule({ name: 'later', nextRunAt: T0 + 5 * MINUTE }), T0);
      const planned: StoredSchedule[] = [];
      const plan = fireAt([T0 - MINUTE, T0], T0 + MINUTE);
      const result = await store.fireSchedules({
        now: T0,
        limit: 10,
        plan: (schedule) => (planned.push(schedule), plan(schedule)),
      });
      assert.deepEqual(
        planned.map((s) => [s.name, s.nextRunAt]),
        [['nightly', T0 - MINUTE]],
        'only the due schedule is planned',
      );
      assert.equal(result.fired.length, 1);
      const [{ schedule, results }] = result.fired as [(typeof result.fired)[number]];
      assert.deepEqual(
        results.map((r) => [r.created, r.task.name, r.task.key, r.task.runAt.getTime()]),
        [
          [true, 'email', 'schedule:nightly:' + (T0 - MINUTE), T0 - MINUTE],
          [true, 'email', 'schedule:nightly:' + T0, T0],
        ],
      );
      assert.deepEqual(
        [schedule.nextRunAt, schedule.lastRunAt, schedule.lastTaskId],
        [T0 + MINUTE, T0, results[1]!.task.id],
      );
      assert.deepEqual(await store.getSchedule('nightly'), schedule);
      assert.equal(result.nextRunAt, T0 + MINUTE, 'the earliest due time after firing');
      const claimed = await claim({ now: T0 });
      assert.deepEqual(
        claimed.map((t) => [t.id, t.payload]),
        results.map((r) => [r.task.id, { from: 'nightly' }]),
      );
    });

    it('fires nothing when nothing is due, and never a paused schedule', async () => {
      assert.deepEqual(await store.fireSchedules({ now: T0, limit: 10, plan: fireAt([T0], T0) }), {
        fired: [],
        nextRunAt: null,
      });
      await store.setSchedule(newSchedule({ nextRunAt: T0 + 1 }), T0);
      await store.setSchedule(newSchedule({ name: 'off', nextRunAt: T0 }), T0);
      await store.pauseSchedule('off', T0);
      const plan = () => assert.fail('nothing is due');
      assert.deepEqual(await store.fireSchedules({ now: T0, limit: 10, plan }), {
        fired: [],
        nextRunAt: T0 + 1,
      });
    });

    it('fires up to the limit, earliest due first; a plan of no task only advances', async () => {
      for (const [name, at] of [
        ['c', T0 - 1],
        ['a', T0 - 3],
        ['b', T0 - 2],
      ] as const) {
        await store.setSchedule(newSchedule({ name, nextRunAt: at }), T0 - 10);
      }
      const first = await store.fireSchedules({ now: T0, limit: 2, plan: fireAt([], T0 + 100) });
      assert.deepEqual(
        first.fired.map((f) => [f.schedule.name, f.schedule.nextRunAt, f.results.length]),
        [
          ['a', T0 + 100, 0],
          ['b', T0 + 100, 0],
        ],
      );
      assert.equal(first.nextRunAt, T0 - 1, 'c is still due');
      const second = await store.fireSchedules({ now: T0, limit: 2, plan: fireAt([T0], null) });
      assert.deepEqual(
        second.fired.map((f) => [f.schedule.name, f.schedule.nextRunAt, f.schedule.lastRunAt]),
        [['c', null, T0]],
        'a null next run: the schedule fires no more',
      );
      assert.equal(second.nextRunAt, T0 + 100);
      const a = await store.getSchedule('a');
      assert.deepEqual([a?.lastRunAt, a?.lastTaskId], [null, null]);
    });

    it('returns the stored task when a due time was fired before (its key)', async () => {
      const [stored] = await store.enqueue([newTask({ key: scheduleTaskKey('nightly', T0) })]);
      await store.setSchedule(newSchedule({ nextRunAt: T0 }), T0 - 1);
      const { fired } = await store.fireSchedules({
        now: T0,
        limit: 10,
        plan: fireAt([T0], T0 + 1),
      });
      assert.deepEqual(
        fired[0]!.results.map((r) => [r.created, r.task.id]),
        [[false, stored!.task.id]],
      );
      assert.equal(fired[0]!.schedule.lastTaskId, stored!.task.id);
    });

    it('fires a due time once when two calls race for it', async () => {
      const { store: first, cleanup, connect } = await makeStore();
      const second: Store = connect?.() ?? first;
      try {
        await first.open();
        if (second !== first) await second.open();
        await first.setSchedule(newSchedule({ nextRunAt: T0 }), T0 - 1);
        const planned: string[] = [];
        for (let round = 0; round < 3; round++) {
          const now = T0 + round * MINUTE;
          const results = await Promise.all(
            [first, second, first, second].map((s) =>
              s.fireSchedules({
                now,
                limit: 10,
                plan: (schedule) => {
                  planned.push(schedule.name);
                  return fireAt([now], now + MINUTE, now)(schedule);
                },
              }),
            ),
          );
          const fired = results.flatMap((r) => r.fired);
          assert.equal(fired.length, 1, `round ${round}: one call fired`);
          assert.equal((await second.getSchedule('nightly'))?.nextRunAt, now + MINUTE);
        }
        assert.equal(planned.length, 3, 'planned once per due time');
        const page = await first.list({ keyPrefix: 'schedule:nightly:', limit: 10 });
        assert.equal(page.tasks.length, 3);
      } finally {
        if (second !== first) await second.close();
        await first.close();
        await cleanup();
      }
    });
  });
}
