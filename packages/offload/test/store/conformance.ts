import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  MAX_ERRORS_KEPT,
  type ClaimedTask,
  type NewTask,
  type Settlement,
  type Store,
} from '../../src/store/store.js';
import type { Json, Task, TaskError } from '../../src/types.js';
import { newStoredTask, T0 } from '../helpers.js';

const LEASE = 30_000;
const OWNER = 'worker-a';
const OTHER_OWNER = 'worker-b';

/** Builds a new task; tests override what they check. */
function newTask(overrides: Partial<NewTask> & { data?: Json } = {}): NewTask {
  const { data, ...rest } = overrides;
  return newStoredTask({
    name: 'email',
    payload: JSON.stringify('data' in overrides ? data : { to: 'a@example.com' }),
    ...rest,
  });
}

function taskError(attempt: number, at: number, message = `failure ${attempt}`): TaskError {
  return {
    attempt,
    at: new Date(at),
    name: 'Error',
    message,
    stack: `Error: ${message}\n    at test`,
  };
}

/**
 * The one suite every store passes. `makeStore` gives a fresh, empty store (not yet opened) and a
 * cleanup that removes whatever it left behind. Times are passed in explicitly: no sleeps, no
 * real clock.
 */
export function storeConformance(
  name: string,
  makeStore: () => Promise<{ store: Store; cleanup(): Promise<void> }>,
): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await makeStore());
      await store.open();
      await store.registerWorker(OWNER);
      await store.registerWorker(OTHER_OWNER);
    });

    afterEach(async () => {
      await store.close();
      await cleanup();
    });

    async function enqueue(...tasks: NewTask[]): Promise<Task[]> {
      const results = await store.enqueue(tasks);
      return results.map((r) => r.task);
    }

    async function enqueueOne(overrides: Parameters<typeof newTask>[0] = {}): Promise<Task> {
      const [task] = await enqueue(newTask(overrides));
      return task!;
    }

    function claim(
      options: {
        names?: string[];
        limit?: number;
        now?: number;
        owner?: string;
        leaseExpiresAt?: number;
      } = {},
    ): Promise<ClaimedTask[]> {
      const now = options.now ?? T0;
      return store.claim({
        owner: options.owner ?? OWNER,
        names: options.names ?? ['email'],
        limit: options.limit ?? 10,
        now,
        leaseExpiresAt: options.leaseExpiresAt ?? now + LEASE,
      });
    }

    async function claimOne(options: Parameters<typeof claim>[0] = {}): Promise<ClaimedTask> {
      const claimed = await claim({ limit: 1, ...options });
      assert.equal(claimed.length, 1, 'expected to claim one task');
      return claimed[0]!;
    }

    function lease({ id, lease }: ClaimedTask): { id: string; lease: number } {
      return { id, lease };
    }

    async function settleOne(settlement: Settlement): Promise<boolean> {
      const [applied] = await store.settle([settlement]);
      return applied!;
    }

    async function mustGet(id: string): Promise<Task> {
      const task = await store.get(id);
      assert.ok(task, `task ${id} should exist`);
      return task;
    }

    describe('lifecycle', () => {
      it('open and close are idempotent, ping answers while open', async () => {
        await store.open();
        await store.ping();
        await store.close();
        await store.close();
        await store.open();
        await store.registerWorker(OWNER);
        await store.registerWorker(OTHER_OWNER);
        await store.ping();
      });
    });

    describe('enqueue', () => {
      it('returns created tasks with ids and every field', async () => {
        const results = await store.enqueue([
          newTask({
            data: { n: 1 },
            priority: 5,
            maxAttempts: 7,
            timeout: 1500,
            key: 'k1',
            runAt: T0 + 10,
            createdAt: T0,
          }),
          newTask({ name: 'sms', data: [1, 'two'] }),
        ]);
        assert.equal(results.length, 2);
        assert.ok(results.every((r) => r.created));
        const [first, second] = results.map((r) => r.task) as [Task, Task];
        assert.equal(typeof first.id, 'string');
        assert.notEqual(first.id, second.id);
        assert.deepEqual(first, {
          id: first.id,
          name: 'email',
          payload: { n: 1 },
          state: 'queued',
          priority: 5,
          attempts: 0,
          maxAttempts: 7,
          timeout: 1500,
          key: 'k1',
          runAt: new Date(T0 + 10),
          createdAt: new Date(T0),
          startedAt: null,
          finishedAt: null,
          errors: [],
          result: null,
        });
        assert.deepEqual(await store.get(first.id), first);
        assert.deepEqual(await store.get(second.id), second);
        assert.equal(second.name, 'sms');
        assert.equal(second.timeout, null);
        assert.equal(second.key, null);
      });

      it('accepts an empty batch', async () => {
        assert.deepEqual(await store.enqueue([]), []);
      });

      it('returns the stored task for a key already stored, with created false', async () => {
        const [first] = await store.enqueue([newTask({ key: 'once', data: { v: 1 } })]);
        const [second] = await store.enqueue([
          newTask({ key: 'once', data: { v: 2 }, priority: 9 }),
        ]);
        assert.equal(first!.created, true);
        assert.equal(second!.created, false);
        assert.deepEqual(second!.task, first!.task);
        assert.equal((await store.list({ limit: 10 })).tasks.length, 1);
      });

      it('de-duplicates keys within one batch', async () => {
        const results = await store.enqueue([
          newTask({ key: 'same', data: 1 }),
          newTask({ key: 'other' }),
          newTask({ key: 'same', data: 2 }),
        ]);
        assert.deepEqual(
          results.map((r) => r.created),
          [true, true, false],
        );
        assert.deepEqual(results[2]!.task, results[0]!.task);
        assert.equal(results[2]!.task.payload, 1);
      });

      it('never de-duplicates tasks without a key', async () => {
        const results = await store.enqueue([newTask(), newTask()]);
        assert.deepEqual(
          results.map((r) => r.created),
          [true, true],
        );
        assert.notEqual(results[0]!.task.id, results[1]!.task.id);
      });

      it('stores every task of a large batch mixing keys and no keys, each with its own fields', async () => {
        // Runs of keyless tasks of many lengths (SQLite inserts them several rows a statement),
        // between tasks with keys, one of them a repeat.
        const inputs: NewTask[] = [];
        for (let run = 0; run < 8; run++) {
          for (let i = 0; i < run * 23; i++) {
            const n = inputs.length;
            inputs.push(
              newTask({ data: { n }, priority: n % 3, timeout: n % 2 ? null : n, runAt: T0 + n }),
            );
          }
          inputs.push(newTask({ key: `run-${run % 5}`, data: { run } }));
        }
        const results = await store.enqueue(inputs);
        assert.equal(results.length, inputs.length);
        const ids = new Set(results.map((r) => r.task.id));
        assert.equal(ids.size, inputs.length - 3);
        const keys = new Set<string>();
        for (const [i, { task, created }] of results.entries()) {
          const input = inputs[i]!;
          const repeat = input.key !== null && keys.has(input.key);
          if (input.key !== null) keys.add(input.key);
          assert.equal(created, !repeat, `task ${i}`);
          if (repeat) continue;
          assert.deepEqual(task.payload, JSON.parse(input.payload), `task ${i}`);
          assert.equal(task.priority, input.priority, `task ${i}`);
          assert.equal(task.timeout, input.timeout, `task ${i}`);
          assert.deepEqual(task.runAt, new Date(input.runAt), `task ${i}`);
          assert.deepEqual(await store.get(task.id), task, `task ${i}`);
        }
        const page = await store.list({ limit: 1000 });
        assert.equal(page.tasks.length, ids.size);
      });

      it('keeps a key taken while its task runs and after it finished, until it is pruned', async () => {
        const task = await enqueueOne({ key: 'k' });
        const claimed = await claimOne();
        let [again] = await store.enqueue([newTask({ key: 'k' })]);
        assert.equal(again!.created, false);
        assert.equal(again!.task.id, task.id);
        assert.equal(again!.task.state, 'running');

        await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
        [again] = await store.enqueue([newTask({ key: 'k' })]);
        assert.equal(again!.created, false);
        assert.equal(again!.task.state, 'succeeded');

        assert.equal(await store.prune(T0 + 2, 100), 1);
        [again] = await store.enqueue([newTask({ key: 'k' })]);
        assert.equal(again!.created, true);
        assert.notEqual(again!.task.id, task.id);
      });
    });

    describe('claim', () => {
      it('takes the highest priority first, then the earliest runAt, then the oldest', async () => {
        const low = await enqueueOne({ priority: 0, runAt: T0 - 100 });
        const highLate = await enqueueOne({ priority: 10, runAt: T0 - 10 });
        const highEarly = await enqueueOne({ priority: 10, runAt: T0 - 20 });
        const mid = await enqueueOne({ priority: 5, runAt: T0 });
        const highLateSecond = await enqueueOne({ priority: 10, runAt: T0 - 10 });
        const negative = await enqueueOne({ priority: -1, runAt: T0 - 1000 });
        const expected = [highEarly, highLate, highLateSecond, mid, low, negative].map((t) => t.id);
        // One at a time: the limit must pick by claim order, not only sort what it picked.
        const oneByOne: string[] = [];
        for (let i = 0; i < expected.length; i++) oneByOne.push((await claimOne()).id);
        assert.deepEqual(oneByOne, expected);
      });

      it('returns a batch in claim order', async () => {
        const late = await enqueueOne({ runAt: T0 - 10 });
        const early = await enqueueOne({ runAt: T0 - 20 });
        const high = await enqueueOne({ priority: 1, runAt: T0 });
        const claimed = await claim({ limit: 10 });
        assert.deepEqual(
          claimed.map((t) => t.id),
          [high.id, early.id, late.id],
        );
      });

      it('takes claim order across successive limited claims', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push((await enqueueOne({ priority: i % 2 })).id);
        const first = await claim({ limit: 2 });
        const second = await claim({ limit: 2 });
        const third = await claim({ limit: 2 });
        assert.deepEqual(
          [...first, ...second, ...third].map((t) => t.id),
          [ids[1], ids[3], ids[0], ids[2], ids[4]],
        );
        assert.deepEqual(await claim(), []);
      });

      it('takes only due tasks: runAt at or before now', async () => {
        const due = await enqueueOne({ runAt: T0 });
        const later = await enqueueOne({ runAt: T0 + 1000 });
        assert.deepEqual(
          (await claim({ now: T0 })).map((t) => t.id),
          [due.id],
        );
        assert.deepEqual(await claim({ now: T0 + 999 }), []);
        assert.deepEqual(
          (await claim({ now: T0 + 1000 })).map((t) => t.id),
          [later.id],
        );
      });

      it('judges due against the now it is given, even when an earlier call saw a later now', async () => {
        const task = await enqueueOne({ runAt: T0 + 1000 });
        assert.deepEqual(await claim({ names: ['other'], now: T0 + 5000 }), []);
        assert.deepEqual(await claim({ now: T0 }), []);
        assert.equal((await mustGet(task.id)).state, 'queued');
        assert.equal((await claimOne({ now: T0 + 1000 })).id, task.id);
      });

      it('takes only the given names and leaves the others queued and untouched', async () => {
        const email = await enqueueOne({ name: 'email' });
        const unknown = await enqueueOne({ name: 'unknown', priority: 100 });
        const sms = await enqueueOne({ name: 'sms' });
        const claimed = await claim({ names: ['email', 'sms'] });
        assert.deepEqual(claimed.map((t) => t.id).sort(), [email.id, sms.id].sort());
        assert.deepEqual(await store.get(unknown.id), unknown);
        assert.deepEqual(await claim({ names: ['email', 'sms'] }), []);
        assert.deepEqual(await claim({ names: [] }), []);
      });

      it('respects the limit and never hands out a task twice', async () => {
        for (let i = 0; i < 7; i++) await enqueueOne();
        const first = await claim({ limit: 3 });
        const second = await claim({ limit: 3, owner: OTHER_OWNER });
        const third = await claim({ limit: 3 });
        assert.deepEqual([first.length, second.length, third.length], [3, 3, 1]);
        const ids = [...first, ...second, ...third].map((t) => t.id);
        assert.equal(new Set(ids).size, 7);
      });

      it('counts an attempt, sets startedAt and hands out a running task with its payload', async () => {
        const task = await enqueueOne({ data: { hello: 'world' } });
        const claimed = await claimOne({ now: T0 + 5 });
        assert.equal(claimed.id, task.id);
        assert.equal(claimed.state, 'running');
        assert.equal(claimed.attempts, 1);
        assert.deepEqual(claimed.startedAt, new Date(T0 + 5));
        assert.equal(claimed.finishedAt, null);
        assert.deepEqual(claimed.payload, { hello: 'world' });
        assert.equal(claimed.payloadError, null);
        assert.equal(typeof claimed.lease, 'number');
        const { lease: _lease, payloadError: _payloadError, ...stored } = claimed;
        assert.deepEqual(await store.get(task.id), stored);
      });

      it('gives a larger lease token on each claim of the same task', async () => {
        await enqueueOne();
        const first = await claimOne();
        await settleOne({
          id: first.id,
          lease: first.lease,
          state: 'queued',
          at: T0 + 1,
          runAt: T0 + 1,
        });
        const second = await claimOne({ now: T0 + 1 });
        assert.equal(second.id, first.id);
        assert.ok(second.lease > first.lease, `lease ${second.lease} should exceed ${first.lease}`);
        assert.equal(second.attempts, 2);
        assert.deepEqual(second.startedAt, new Date(T0 + 1));
      });
    });

    describe('settle', () => {
      it('succeeded sets finishedAt and keeps the attempt', async () => {
        const { id, lease } = (await enqueueOne(), await claimOne());
        assert.equal(await settleOne({ id, lease, state: 'succeeded', at: T0 + 50 }), true);
        const task = await mustGet(id);
        assert.equal(task.state, 'succeeded');
        assert.deepEqual(task.finishedAt, new Date(T0 + 50));
        assert.equal(task.attempts, 1);
        assert.deepEqual(task.errors, []);
        assert.deepEqual(await claim({ now: T0 + 100 }), []);
      });

      it('succeeded keeps the result, handed back by get and list; other outcomes keep none', async () => {
        const result = { provider: 'smtp-2', ids: [1, 2], nested: { ok: true, none: null } };
        const [a, b] = await enqueue(newTask(), newTask());
        const [first, second] = await claim();
        assert.equal(
          await settleOne({
            ...lease(first!),
            state: 'succeeded',
            at: T0 + 5,
            result: JSON.stringify(result),
          }),
          true,
        );
        assert.equal(await settleOne({ ...lease(second!), state: 'succeeded', at: T0 + 5 }), true);
        assert.deepEqual((await mustGet(a!.id)).result, result);
        assert.equal((await mustGet(b!.id)).result, null);
        const listed = (await store.list({ limit: 10 })).tasks;
        assert.deepEqual(listed.find((t) => t.id === a!.id)!.result, result);

        const c = await enqueueOne();
        const claimed = await claimOne();
        const error = taskError(1, T0 + 9);
        await settleOne({ ...lease(claimed), state: 'queued', at: T0 + 9, runAt: T0 + 10, error });
        assert.equal((await mustGet(c.id)).result, null);
        assert.equal((await claimOne({ now: T0 + 10 })).result, null);
      });

      it('failed sets finishedAt and records the error', async () => {
        const { id, lease } = (await enqueueOne(), await claimOne());
        const error = taskError(1, T0 + 20, 'boom');
        assert.equal(await settleOne({ id, lease, state: 'failed', at: T0 + 20, error }), true);
        const task = await mustGet(id);
        assert.equal(task.state, 'failed');
        assert.deepEqual(task.finishedAt, new Date(T0 + 20));
        assert.deepEqual(task.errors, [error]);
      });

      it('queued with runAt requeues the task, claimable only once it is due', async () => {
        const { id, lease } = (await enqueueOne(), await claimOne());
        const error = taskError(1, T0 + 10);
        assert.equal(
          await settleOne({ id, lease, state: 'queued', at: T0 + 10, runAt: T0 + 1000, error }),
          true,
        );
        const task = await mustGet(id);
        assert.equal(task.state, 'queued');
        assert.deepEqual(task.runAt, new Date(T0 + 1000));
        assert.equal(task.finishedAt, null);
        assert.equal(task.attempts, 1);
        assert.deepEqual(task.errors, [error]);
        assert.deepEqual(await claim({ now: T0 + 999 }), []);
        const again = await claimOne({ now: T0 + 1000 });
        assert.equal(again.id, id);
        assert.equal(again.attempts, 2);
      });

      it('queued without runAt runs again at `at`', async () => {
        const { id, lease } = (await enqueueOne(), await claimOne());
        await settleOne({ id, lease, state: 'queued', at: T0 + 7 });
        assert.deepEqual((await mustGet(id)).runAt, new Date(T0 + 7));
        assert.deepEqual(await claim({ now: T0 + 6 }), []);
        assert.equal((await claimOne({ now: T0 + 7 })).id, id);
      });

      it(`keeps the last ${MAX_ERRORS_KEPT} errors, dropping the oldest`, async () => {
        const task = await enqueueOne({ maxAttempts: 100 });
        const total = MAX_ERRORS_KEPT + 3;
        for (let attempt = 1; attempt <= total; attempt++) {
          const now = T0 + attempt;
          const claimed = await claimOne({ now });
          assert.equal(claimed.attempts, attempt);
          await settleOne({
            id: task.id,
            lease: claimed.lease,
            state: 'queued',
            at: now,
            runAt: now + 1,
            error: taskError(attempt, now),
          });
        }
        const { errors } = await mustGet(task.id);
        assert.equal(errors.length, MAX_ERRORS_KEPT);
        assert.deepEqual(
          errors.map((e) => e.attempt),
          Array.from({ length: MAX_ERRORS_KEPT }, (_, i) => total - MAX_ERRORS_KEPT + 1 + i),
        );
        assert.deepEqual(errors.at(-1), taskError(total, T0 + total));
      });

      it('refund gives the attempt back', async () => {
        const { id, lease } = (await enqueueOne(), await claimOne());
        assert.equal(
          await settleOne({ id, lease, state: 'queued', at: T0 + 1, runAt: T0 + 1, refund: true }),
          true,
        );
        const task = await mustGet(id);
        assert.equal(task.attempts, 0);
        assert.equal(task.state, 'queued');
        assert.equal((await claimOne({ now: T0 + 1 })).attempts, 1);
      });

      it('settles a batch, answering per settlement', async () => {
        await enqueue(newTask(), newTask(), newTask());
        const [a, b, c] = (await claim()) as [ClaimedTask, ClaimedTask, ClaimedTask];
        const results = await store.settle([
          { id: a.id, lease: a.lease, state: 'succeeded', at: T0 + 1 },
          { id: b.id, lease: b.lease + 1, state: 'succeeded', at: T0 + 1 },
          { id: c.id, lease: c.lease, state: 'failed', at: T0 + 1, error: taskError(1, T0 + 1) },
          { id: a.id, lease: a.lease, state: 'failed', at: T0 + 2 },
        ]);
        assert.deepEqual(results, [true, false, true, false]);
        assert.equal((await mustGet(a.id)).state, 'succeeded');
        assert.equal((await mustGet(b.id)).state, 'running');
        assert.equal((await mustGet(c.id)).state, 'failed');
      });

      it('ignores a settlement with an old lease token and changes nothing (fencing)', async () => {
        const { id, lease: oldLease } = (await enqueueOne(), await claimOne());
        const [rescued] = await store.rescue(T0 + LEASE + 1);
        assert.equal(rescued!.task.id, id);
        const current = await claimOne({ now: T0 + LEASE + 1, owner: OTHER_OWNER });
        const before = await mustGet(id);
        assert.equal(
          await settleOne({
            id,
            lease: oldLease,
            state: 'failed',
            at: T0 + LEASE + 2,
            error: taskError(1, T0),
          }),
          false,
        );
        assert.deepEqual(await mustGet(id), before);
        assert.equal(
          await settleOne({ id, lease: current.lease, state: 'succeeded', at: T0 + LEASE + 3 }),
          true,
        );
      });

      it('ignores a settlement of a task that is not running, or unknown', async () => {
        const task = await enqueueOne();
        assert.equal(await settleOne({ id: task.id, lease: 1, state: 'succeeded', at: T0 }), false);
        assert.equal(await settleOne({ id: task.id, lease: 0, state: 'succeeded', at: T0 }), false);
        assert.deepEqual(await mustGet(task.id), task);
        const claimed = await claimOne();
        await settleOne({ id: task.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
        const finished = await mustGet(task.id);
        assert.equal(
          await settleOne({ id: task.id, lease: claimed.lease, state: 'failed', at: T0 + 2 }),
          false,
        );
        assert.deepEqual(await mustGet(task.id), finished);
        assert.equal(
          await settleOne({ id: '987654321', lease: 1, state: 'succeeded', at: T0 }),
          false,
        );
      });
    });

    describe('renew', () => {
      it('extends the leases still held and returns the ids of the lost ones', async () => {
        await enqueue(newTask(), newTask(), newTask(), newTask());
        const [held, stale, canceled, finished] = (await claim()) as ClaimedTask[] as [
          ClaimedTask,
          ClaimedTask,
          ClaimedTask,
          ClaimedTask,
        ];
        await store.cancel(canceled.id, T0 + 1);
        await settleOne({ id: finished.id, lease: finished.lease, state: 'succeeded', at: T0 + 1 });
        const lost = await store.renew(
          [
            { id: held.id, lease: held.lease },
            { id: stale.id, lease: stale.lease + 1 },
            { id: canceled.id, lease: canceled.lease },
            { id: finished.id, lease: finished.lease },
            { id: '987654321', lease: 1 },
          ],
          T0 + 10 * LEASE,
        );
        assert.deepEqual(lost.sort(), [stale.id, canceled.id, finished.id, '987654321'].sort());
        // The renewed lease outlives the original expiry; the stale one does not.
        const rescued = await store.rescue(T0 + 2 * LEASE);
        assert.deepEqual(
          rescued.map((r) => r.task.id),
          [stale.id],
        );
        assert.equal((await mustGet(held.id)).state, 'running');
        assert.equal(
          await settleOne({
            id: held.id,
            lease: held.lease,
            state: 'succeeded',
            at: T0 + 2 * LEASE,
          }),
          true,
        );
      });

      it('returns nothing for nothing', async () => {
        assert.deepEqual(await store.renew([], T0), []);
      });
    });

    describe('rescue', () => {
      it('requeues a running task whose lease expired before now, recording the interruption', async () => {
        const task = await enqueueOne({ maxAttempts: 3 });
        const claimed = await claimOne({ leaseExpiresAt: T0 + 100 });
        assert.deepEqual(await store.rescue(T0 + 100), [], 'a lease expiring at now is still held');
        const rescued = await store.rescue(T0 + 101);
        assert.equal(rescued.length, 1);
        const { task: back, owner } = rescued[0]!;
        assert.equal(owner, OWNER);
        assert.equal(back.id, task.id);
        assert.equal(back.state, 'queued');
        assert.equal(back.attempts, 1);
        assert.deepEqual(back.runAt, new Date(T0 + 101));
        assert.equal(back.finishedAt, null);
        assert.equal(back.errors.length, 1);
        const [error] = back.errors;
        assert.equal(error!.name, 'TaskInterruptedError');
        assert.equal(error!.attempt, 1);
        assert.deepEqual(error!.at, new Date(T0 + 101));
        assert.match(error!.message, new RegExp(OWNER));
        assert.deepEqual(await mustGet(task.id), back);

        const again = await claimOne({ now: T0 + 101 });
        assert.equal(again.attempts, 2);
        assert.ok(again.lease > claimed.lease);
        assert.equal(
          await settleOne({ id: task.id, lease: claimed.lease, state: 'succeeded', at: T0 + 102 }),
          false,
        );
      });

      it('fails a rescued task that has no attempt left', async () => {
        const task = await enqueueOne({ maxAttempts: 1 });
        await claimOne({ leaseExpiresAt: T0 + 100 });
        const [rescued] = await store.rescue(T0 + 200);
        assert.equal(rescued!.task.state, 'failed');
        assert.equal(rescued!.task.attempts, 1);
        assert.deepEqual(rescued!.task.finishedAt, new Date(T0 + 200));
        assert.equal(rescued!.task.errors[0]!.name, 'TaskInterruptedError');
        assert.deepEqual(await mustGet(task.id), rescued!.task);
        assert.deepEqual(await claim({ now: T0 + 300 }), []);
      });

      it('leaves a task with a live lease alone, and queued or finished tasks too', async () => {
        await enqueue(newTask(), newTask(), newTask(), newTask({ runAt: T0 - 1_000_000 }));
        const [live, done] = (await claim({ limit: 2, leaseExpiresAt: T0 + 10_000 })) as [
          ClaimedTask,
          ClaimedTask,
        ];
        await settleOne({ id: done.id, lease: done.lease, state: 'succeeded', at: T0 + 1 });
        const before = (await store.list({ limit: 10 })).tasks;
        assert.deepEqual(await store.rescue(T0 + 5_000), []);
        assert.deepEqual((await store.list({ limit: 10 })).tasks, before);
        assert.equal((await mustGet(live.id)).state, 'running');
      });
    });

    describe('get', () => {
      it('returns null for an unknown id', async () => {
        assert.equal(await store.get('123456789'), null);
        assert.equal(await store.get('not-an-id'), null);
      });

      it('knows a task by its id as handed out, not by another spelling of the number', async () => {
        const task = await enqueueOne();
        for (const spelling of [
          `0${task.id}`,
          `${task.id}.0`,
          ` ${task.id}`,
          `${task.id}e0`,
          `+${task.id}`,
        ]) {
          assert.equal(await store.get(spelling), null, spelling);
          assert.equal(await store.cancel(spelling, T0), null, spelling);
        }
        assert.equal((await store.get(task.id))?.id, task.id);
      });
    });

    describe('list', () => {
      it('lists newest first and filters by state and by name', async () => {
        const a = await enqueueOne({ name: 'email' });
        const b = await enqueueOne({ name: 'sms' });
        const c = await enqueueOne({ name: 'email' });
        const d = await enqueueOne({ name: 'sms', runAt: T0 + 1000 });
        await claim({ names: ['email'], limit: 1 });
        const ids = async (filter: Parameters<Store['list']>[0]) =>
          (await store.list(filter)).tasks.map((t) => t.id);
        assert.deepEqual(await ids({ limit: 10 }), [d.id, c.id, b.id, a.id]);
        assert.deepEqual(await ids({ limit: 10, state: 'queued' }), [d.id, c.id, b.id]);
        assert.deepEqual(await ids({ limit: 10, state: 'running' }), [a.id]);
        assert.deepEqual(await ids({ limit: 10, name: 'sms' }), [d.id, b.id]);
        assert.deepEqual(await ids({ limit: 10, name: 'email', state: 'queued' }), [c.id]);
        assert.deepEqual(await ids({ limit: 10, state: 'failed' }), []);
        assert.deepEqual(await ids({ limit: 10, name: 'nothing' }), []);
      });

      it('pages through every task exactly once, with a null cursor on the last page', async () => {
        for (let i = 0; i < 7; i++) await enqueueOne({ name: i % 2 === 0 ? 'email' : 'sms' });
        const all = (await store.list({ limit: 100 })).tasks.map((t) => t.id);
        assert.equal(all.length, 7);
        for (const limit of [1, 2, 3, 7, 8]) {
          const seen: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          for (;;) {
            const page = await store.list({ limit, ...(cursor === undefined ? {} : { cursor }) });
            pages += 1;
            assert.ok(page.tasks.length <= limit);
            seen.push(...page.tasks.map((t) => t.id));
            if (page.nextCursor === null) break;
            assert.equal(page.tasks.length, limit);
            cursor = page.nextCursor;
            assert.ok(pages < 20, 'pagination does not end');
          }
          assert.deepEqual(seen, all, `limit ${limit}`);
          assert.equal(pages, Math.max(1, Math.ceil(7 / limit)), `pages for limit ${limit}`);
        }
        const filtered: string[] = [];
        let page = await store.list({ limit: 2, name: 'email' });
        filtered.push(...page.tasks.map((t) => t.id));
        while (page.nextCursor !== null) {
          page = await store.list({ limit: 2, name: 'email', cursor: page.nextCursor });
          filtered.push(...page.tasks.map((t) => t.id));
        }
        assert.deepEqual(
          filtered,
          all.filter((_, i) => i % 2 === 0),
        );
      });

      it('answers an empty page with a null cursor', async () => {
        assert.deepEqual(await store.list({ limit: 5 }), { tasks: [], nextCursor: null });
      });

      it('filters by key prefix, exactly, with state, name and pages', async () => {
        const keys = ['order:4', 'order:42:a', 'order:42:b', 'order:420', 'order:43', 'order:42;'];
        const tasks = await enqueue(
          ...keys.map((key, i) => newTask({ key, name: i === 2 ? 'sms' : 'email' })),
          newTask(),
        );
        const id = (key: string) => tasks[keys.indexOf(key)]!.id;
        const ids = async (filter: Omit<Parameters<Store['list']>[0], 'limit'>, limit = 10) =>
          (await store.list({ limit, ...filter })).tasks.map((t) => t.id);
        assert.deepEqual(await ids({ keyPrefix: 'order:42:' }), [
          id('order:42:b'),
          id('order:42:a'),
        ]);
        assert.deepEqual(await ids({ keyPrefix: 'order:42' }), [
          id('order:42;'),
          id('order:420'),
          id('order:42:b'),
          id('order:42:a'),
        ]);
        assert.deepEqual(await ids({ keyPrefix: 'order:42:', name: 'sms' }), [id('order:42:b')]);
        await claimOne();
        assert.deepEqual(await ids({ keyPrefix: 'order:', state: 'running' }), [id('order:4')]);
        assert.deepEqual(await ids({ keyPrefix: 'order:42:', state: 'running' }), []);
        assert.deepEqual(await ids({ keyPrefix: 'nothing' }), []);
        const first = await store.list({ limit: 1, keyPrefix: 'order:42:' });
        assert.deepEqual(
          first.tasks.map((t) => t.id),
          [id('order:42:b')],
        );
        assert.deepEqual(await ids({ keyPrefix: 'order:42:', cursor: first.nextCursor! }), [
          id('order:42:a'),
        ]);
      });

      it('matches key prefixes by code point, beyond ASCII', async () => {
        const keys = ['ü:1', 'ü:2', 'üb', 'v', '\u{10FFFF}x', '\u{1F600}', '\uFFFF'];
        const tasks = await enqueue(...keys.map((key) => newTask({ key })));
        const id = (key: string) => tasks[keys.indexOf(key)]!.id;
        const ids = async (keyPrefix: string) =>
          (await store.list({ limit: 10, keyPrefix })).tasks.map((t) => t.id);
        assert.deepEqual(await ids('ü:'), [id('ü:2'), id('ü:1')]);
        assert.deepEqual(await ids('\u{10FFFF}'), [id('\u{10FFFF}x')]);
        assert.deepEqual(await ids('\uFFFF'), [id('\uFFFF')]);
        assert.deepEqual(await ids('\u{1F600}'), [id('\u{1F600}')]);
      });
    });

    describe('cancel', () => {
      it('cancels a queued task, which then never runs', async () => {
        const task = await enqueueOne();
        const change = await store.cancel(task.id, T0 + 5);
        assert.ok(change);
        assert.equal(change.changed, true);
        assert.equal(change.task.state, 'canceled');
        assert.deepEqual(change.task.finishedAt, new Date(T0 + 5));
        assert.deepEqual(await mustGet(task.id), change.task);
        assert.deepEqual(await claim({ now: T0 + 10 }), []);
      });

      it('cancels a running task, whose later settlement and renewal are refused', async () => {
        const claimed = (await enqueueOne(), await claimOne());
        const change = await store.cancel(claimed.id, T0 + 5);
        assert.equal(change!.changed, true);
        assert.equal(change!.task.state, 'canceled');
        assert.equal(
          await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 6 }),
          false,
        );
        assert.deepEqual(
          await store.renew([{ id: claimed.id, lease: claimed.lease }], T0 + LEASE),
          [claimed.id],
        );
        assert.deepEqual(await store.rescue(T0 + 10 * LEASE), []);
        assert.deepEqual(await mustGet(claimed.id), change!.task);
      });

      it('leaves a finished task unchanged and answers null for an unknown id', async () => {
        const claimed = (await enqueueOne(), await claimOne());
        await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
        const finished = await mustGet(claimed.id);
        assert.deepEqual(await store.cancel(claimed.id, T0 + 2), {
          task: finished,
          changed: false,
        });
        assert.deepEqual(await mustGet(claimed.id), finished);
        assert.equal(await store.cancel('987654321', T0), null);
      });
    });

    describe('retry', () => {
      it('queues a failed task now, granting one more attempt when none is left', async () => {
        const task = await enqueueOne({ maxAttempts: 1 });
        const claimed = await claimOne();
        await settleOne({
          id: task.id,
          lease: claimed.lease,
          state: 'failed',
          at: T0 + 1,
          error: taskError(1, T0 + 1),
        });
        const change = await store.retry(task.id, T0 + 50);
        assert.equal(change!.changed, true);
        assert.equal(change!.task.state, 'queued');
        assert.deepEqual(change!.task.runAt, new Date(T0 + 50));
        assert.equal(change!.task.finishedAt, null);
        assert.equal(change!.task.maxAttempts, 2);
        assert.equal(change!.task.attempts, 1);
        assert.equal(change!.task.errors.length, 1);
        assert.deepEqual(await mustGet(task.id), change!.task);
        assert.deepEqual(await claim({ now: T0 + 49 }), []);
        assert.equal((await claimOne({ now: T0 + 50 })).attempts, 2);
      });

      it('queues a canceled task, keeping maxAttempts when attempts are left', async () => {
        const task = await enqueueOne({ maxAttempts: 3 });
        await store.cancel(task.id, T0 + 1);
        const change = await store.retry(task.id, T0 + 2);
        assert.equal(change!.changed, true);
        assert.equal(change!.task.state, 'queued');
        assert.equal(change!.task.maxAttempts, 3);
        assert.equal((await claimOne({ now: T0 + 2 })).id, task.id);
      });

      it('leaves queued, running and succeeded tasks unchanged; null for an unknown id', async () => {
        const queued = await enqueueOne({ runAt: T0 + 1000 });
        assert.deepEqual(await store.retry(queued.id, T0), { task: queued, changed: false });
        const claimed = (await enqueueOne(), await claimOne());
        const running = await mustGet(claimed.id);
        assert.deepEqual(await store.retry(claimed.id, T0), { task: running, changed: false });
        await settleOne({ id: claimed.id, lease: claimed.lease, state: 'succeeded', at: T0 + 1 });
        const succeeded = await mustGet(claimed.id);
        assert.deepEqual(await store.retry(claimed.id, T0 + 2), {
          task: succeeded,
          changed: false,
        });
        assert.equal(await store.retry('987654321', T0), null);
      });
    });

    describe('prune', () => {
      it('deletes only tasks that finished before `before`', async () => {
        const [succeeded, failed, canceled, late, running] = await enqueue(
          newTask(),
          newTask(),
          newTask(),
          newTask(),
          newTask(),
        );
        const queued = await enqueueOne({ name: 'sms', createdAt: T0 - 1_000_000 });
        const waiting = await enqueueOne({ runAt: T0 + 1_000_000 });
        const claimed = await claim({ limit: 10 });
        assert.equal(claimed.length, 5);
        const leaseOf = (id: string) => claimed.find((t) => t.id === id)!.lease;
        await store.settle([
          { id: succeeded!.id, lease: leaseOf(succeeded!.id), state: 'succeeded', at: T0 + 10 },
          { id: failed!.id, lease: leaseOf(failed!.id), state: 'failed', at: T0 + 20 },
          { id: late!.id, lease: leaseOf(late!.id), state: 'succeeded', at: T0 + 100 },
        ]);
        await store.cancel(canceled!.id, T0 + 30);

        assert.equal(await store.prune(T0 + 100, 100), 3);
        assert.equal(await store.get(succeeded!.id), null);
        assert.equal(await store.get(failed!.id), null);
        assert.equal(await store.get(canceled!.id), null);
        assert.equal((await mustGet(late!.id)).state, 'succeeded');
        assert.equal((await mustGet(running!.id)).state, 'running');
        assert.deepEqual(await mustGet(queued.id), queued);
        assert.deepEqual(await mustGet(waiting.id), waiting);
        assert.equal(await store.prune(T0 + 100, 100), 0);
        assert.equal(await store.prune(T0 + 101, 100), 1);
        assert.equal(await store.prune(T0 + 10_000_000, 100), 0);
      });

      it('deletes at most `limit` tasks per call', async () => {
        const tasks = await enqueue(...Array.from({ length: 5 }, () => newTask()));
        for (const task of tasks) await store.cancel(task.id, T0);
        assert.equal(await store.prune(T0 + 1, 2), 2);
        assert.equal(await store.prune(T0 + 1, 2), 2);
        assert.equal(await store.prune(T0 + 1, 2), 1);
        assert.equal(await store.prune(T0 + 1, 2), 0);
        assert.deepEqual((await store.list({ limit: 10 })).tasks, []);
      });
    });

    describe('stats', () => {
      it('counts tasks per name and state and finds the oldest due task', async () => {
        await enqueue(
          newTask({ name: 'email', runAt: T0 - 50 }),
          newTask({ name: 'email', runAt: T0 - 20 }),
          newTask({ name: 'email', runAt: T0 + 500 }),
          newTask({ name: 'sms', runAt: T0 - 10, priority: 3 }),
          newTask({ name: 'push', runAt: T0 - 100 }),
        );
        const [claimed] = await claim({ names: ['push'] });
        await settleOne({ id: claimed!.id, lease: claimed!.lease, state: 'failed', at: T0 });
        const stats = await store.stats(T0);
        const counts = [...stats.counts].sort((x, y) =>
          `${x.name}/${x.state}`.localeCompare(`${y.name}/${y.state}`),
        );
        assert.deepEqual(counts, [
          { name: 'email', state: 'queued', count: 3 },
          { name: 'push', state: 'failed', count: 1 },
          { name: 'sms', state: 'queued', count: 1 },
        ]);
        assert.equal(stats.oldestDue, T0 - 50);
        assert.equal((await store.stats(T0 - 60)).oldestDue, null);
      });

      it('reports an empty store', async () => {
        assert.deepEqual(await store.stats(T0), { counts: [], oldestDue: null });
      });

      it('keeps the counts right through every change of state, and drops groups that empty', async () => {
        const counts = async () =>
          Object.fromEntries(
            (await store.stats(T0)).counts
              .map(({ name, state, count }) => [`${name} ${state}`, count] as const)
              .sort(([x], [y]) => x.localeCompare(y)),
          );
        const [a, b, c] = await enqueue(
          newTask({ key: 'a' }),
          newTask({ maxAttempts: 1 }),
          newTask(),
          newTask({ name: 'sms', runAt: T0 + 500 }),
        );
        await enqueue(newTask({ key: 'a' }));
        assert.deepEqual(await counts(), { 'email queued': 3, 'sms queued': 1 });

        const [first, second] = await claim({ limit: 2 });
        assert.deepEqual([first!.id, second!.id], [a!.id, b!.id]);
        assert.deepEqual(await counts(), {
          'email queued': 1,
          'email running': 2,
          'sms queued': 1,
        });
        assert.equal(
          await settleOne({ id: a!.id, lease: first!.lease + 1, state: 'succeeded', at: T0 }),
          false,
        );
        await settleOne({ ...lease(first!), state: 'queued', at: T0, runAt: T0 + 1000 });
        assert.deepEqual(await counts(), {
          'email queued': 2,
          'email running': 1,
          'sms queued': 1,
        });
        // b has no attempt left: the rescue fails it.
        await store.rescue(T0 + LEASE + 1);
        assert.deepEqual(await counts(), {
          'email failed': 1,
          'email queued': 2,
          'sms queued': 1,
        });

        const third = await claimOne();
        assert.equal(third.id, c!.id);
        await settleOne({ ...lease(third), state: 'succeeded', at: T0 });
        const [sms] = (await store.list({ name: 'sms', limit: 1 })).tasks;
        await store.cancel(sms!.id, T0);
        assert.deepEqual(await counts(), {
          'email failed': 1,
          'email queued': 1,
          'email succeeded': 1,
          'sms canceled': 1,
        });
        await store.retry(b!.id, T0);
        await store.retry(b!.id, T0);
        await store.cancel(a!.id, T0);
        assert.deepEqual(await counts(), {
          'email canceled': 1,
          'email queued': 1,
          'email succeeded': 1,
          'sms canceled': 1,
        });

        assert.equal(await store.prune(T0 + 1, 100), 3);
        assert.deepEqual(await counts(), { 'email queued': 1 });
      });
    });

    describe('payloads and snapshots', () => {
      const payload: Json = {
        text: 'héllo wörld ✓ 日本語 🚀 \u0000 "quoted" \\ back\nline',
        nested: { deep: [1, 2.5, -3e-7, { empty: {}, list: [] }], flag: true, nothing: null },
        big: 9007199254740991,
        empty: '',
      };

      it('hands payloads back deep-equal from enqueue, get, list and claim', async () => {
        const task = await enqueueOne({ data: payload });
        assert.deepEqual(task.payload, payload);
        assert.deepEqual((await mustGet(task.id)).payload, payload);
        assert.deepEqual((await store.list({ limit: 1 })).tasks[0]!.payload, payload);
        assert.deepEqual((await claimOne()).payload, payload);
        for (const scalar of [null, 0, 'text', false, [1, [2, [3]]]] as Json[]) {
          const stored = await enqueueOne({ data: scalar });
          assert.deepEqual((await mustGet(stored.id)).payload, scalar);
        }
      });

      it('returns snapshots: changing a returned task or a settled error changes nothing stored', async () => {
        const task = await enqueueOne({ data: payload });
        const claimed = await claimOne();
        const error = taskError(1, T0 + 1);
        await settleOne({
          id: task.id,
          lease: claimed.lease,
          state: 'queued',
          at: T0 + 1,
          runAt: T0 + 2,
          error,
        });
        const before = await mustGet(task.id);
        const expected = structuredClone(before);

        error.message = 'changed';
        error.at.setTime(0);
        for (const returned of [
          task,
          claimed,
          before,
          (await store.list({ limit: 1 })).tasks[0]!,
        ]) {
          (returned.payload as { [key: string]: Json }).text = 'changed';
          returned.runAt.setTime(0);
          returned.createdAt.setTime(0);
          returned.errors.push(taskError(99, 0));
          returned.errors[0]?.at.setTime(0);
          returned.state = 'succeeded';
        }
        assert.deepEqual(await mustGet(task.id), expected);
      });
    });
  });
}
