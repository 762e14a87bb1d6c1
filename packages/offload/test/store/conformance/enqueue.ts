import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewTask } from '../../../src/store/store.js';
import type { Task } from '../../../src/types.js';
import { T0 } from '../../helpers.js';
import { newTask, useStore, type MakeStore } from './harness.js';

export function describeEnqueue(makeStore: MakeStore): void {
  describe('enqueue', () => {
    const { store, enqueueOne, claim, claimOne, settleOne, mustGet } = useStore(makeStore);

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
        group: null,
        runAt: new Date(T0 + 10),
        createdAt: new Date(T0),
        startedAt: null,
        finishedAt: null,
        errors: [],
        result: null,
        progress: null,
        trace: null,
      });
      assert.deepEqual(await store.get(first.id), first);
      assert.deepEqual(await store.get(second.id), second);
      assert.equal(second.name, 'sms');
      assert.equal(second.timeout, null);
      assert.equal(second.key, null);
    });

    it("keeps each task's trace as given, through get, list, claim and a retry", async () => {
      const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      const other = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00';
      const results = await store.enqueue([
        newTask({ trace: parent, data: 1 }),
        newTask({ data: 2 }),
        newTask({
          trace: other,
          key: 'traced',
          group: { key: 'g', concurrency: null, rate: null },
        }),
      ]);
      assert.deepEqual(
        results.map((r) => r.task.trace),
        [parent, null, other],
      );
      for (const { task } of results) assert.equal((await mustGet(task.id)).trace, task.trace);
      const listed = (await store.list({ limit: 10 })).tasks.map((t) => t.trace).sort();
      assert.deepEqual(listed, [other, parent, null].sort());
      const claimed = await claim();
      const byId = new Map(claimed.map((task) => [task.id, task.trace]));
      assert.deepEqual(
        results.map((r) => byId.get(r.task.id)),
        [parent, null, other],
      );
      const first = claimed.find((task) => task.id === results[0]!.task.id)!;
      await store.settle([
        { id: first.id, lease: first.lease, state: 'queued', at: T0, runAt: T0 + 2 },
      ]);
      assert.equal((await mustGet(first.id)).trace, parent);
    });

    it('accepts an empty batch', async () => {
      assert.deepEqual(await store.enqueue([]), []);
    });

    it('returns the stored task for a key already stored, with created false', async () => {
      const [first] = await store.enqueue([newTask({ key: 'once', data: { v: 1 } })]);
      const [second] = await store.enqueue([newTask({ key: 'once', data: { v: 2 }, priority: 9 })]);
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
}
