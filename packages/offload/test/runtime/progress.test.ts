import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defineTask, InvalidPayloadError, MemoryStore, type Json } from '../../src/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import type { ProgressUpdate } from '../../src/store/store.js';
import { barrier, fakeClock, finished, memoryRuntimes, nextEvent, tempDir } from '../helpers.js';

/** A memory store that keeps each progress write, and lets a test wait for the nth. */
class RecordingStore extends MemoryStore {
  readonly writes: ProgressUpdate[][] = [];
  private waiters: { count: number; open(): void }[] = [];

  override async progress(updates: readonly ProgressUpdate[]): Promise<string[]> {
    const lost = await super.progress(updates);
    this.writes.push([...updates]);
    for (const waiter of this.waiters.filter((w) => this.writes.length >= w.count)) waiter.open();
    return lost;
  }

  /** Resolves once `count` progress writes have been made. */
  written(count: number): Promise<void> {
    if (this.writes.length >= count) return Promise.resolve();
    const { promise, open } = barrier();
    this.waiters.push({ count, open });
    return promise;
  }

  /** What each write carried, decoded. */
  values(): Json[][] {
    return this.writes.map((write) => write.map((u) => JSON.parse(u.progress) as Json));
  }
}

const runtimeWith = memoryRuntimes();

describe('progress', () => {
  it('writes the latest of many reports, shows it on the task, and stores the last with the outcome', async () => {
    const store = new RecordingStore();
    const clock = fakeClock();
    const seen = barrier();
    const resume = barrier();
    const work = defineTask({
      name: 'work',
      async run(_payload, ctx) {
        for (let done = 1; done <= 1000; done++) ctx.progress({ done, total: 1000 });
        await store.written(1);
        seen.open();
        await resume.promise;
        // Within the interval of the clock, which does not move: these wait for the outcome.
        for (const step of ['b', 'c', 'd']) ctx.progress(step);
        return 'ok';
      },
    });
    const runtime = runtimeWith({ store, clock, tasks: [work] });
    const events: Json[] = [];
    runtime.on('task:progress', ({ task, progress }) => {
      assert.deepEqual(task.progress, progress);
      events.push(progress);
    });
    const task = await runtime.enqueue(work, {});
    assert.equal(task.progress, null);
    await runtime.start();
    await seen.promise;
    assert.deepEqual(store.values(), [[{ done: 1000, total: 1000 }]]);
    const running = await runtime.get(task.id);
    assert.deepEqual([running?.state, running?.progress], ['running', { done: 1000, total: 1000 }]);
    resume.open();
    const done = await finished(runtime, task.id);
    assert.deepEqual([done.state, done.progress], ['succeeded', 'd']);
    assert.equal(store.writes.length, 1, 'the last value went with the outcome, not on its own');
    assert.deepEqual(events, [{ done: 1000, total: 1000 }, 'd']);
  });

  it('writes again once the interval has passed on the runtime clock, every task in one write', async () => {
    const store = new RecordingStore();
    const clock = fakeClock();
    const both = barrier();
    let started = 0;
    const step = defineTask<{ n: number }>({
      name: 'step',
      async run({ n }, ctx) {
        if (++started === 2) both.open();
        await both.promise;
        ctx.progress({ n, step: 1 });
        await store.written(1);
        if (n === 1) clock.advance(1000);
        ctx.progress({ n, step: 2 });
        await store.written(2);
      },
    });
    const runtime = runtimeWith({ store, clock, tasks: [step] });
    const [a, b] = await runtime.enqueueMany([
      { task: step, payload: { n: 1 } },
      { task: step, payload: { n: 2 } },
    ]);
    await runtime.start();
    await finished(runtime, a!.id);
    await finished(runtime, b!.id);
    const byTask = (write: Json[]) =>
      [...write].sort((x, y) => (x as { n: number }).n - (y as { n: number }).n);
    assert.deepEqual(store.values().map(byTask), [
      [
        { n: 1, step: 1 },
        { n: 2, step: 1 },
      ],
      [
        { n: 1, step: 2 },
        { n: 2, step: 2 },
      ],
    ]);
    assert.deepEqual((await runtime.get(a!.id))?.progress, { n: 1, step: 2 });
  });

  it('writes nothing once the attempt lost its task (canceled), and keeps what was stored', async () => {
    const store = new RecordingStore();
    const canceled = barrier();
    let late: unknown = 'not reported';
    const work = defineTask({
      name: 'work',
      async run(_payload, ctx) {
        ctx.progress('before');
        await store.written(1);
        await canceled.promise;
        ctx.progress('after');
        late = 'reported';
      },
    });
    const runtime = runtimeWith({ store, tasks: [work] });
    const task = await runtime.enqueue(work, {});
    await runtime.start();
    await store.written(1);
    await runtime.cancel(task.id);
    canceled.open();
    await runtime.stop();
    assert.equal(late, 'reported', 'a late report is ignored, not thrown');
    assert.deepEqual(store.values(), [['before']]);
  });

  it('refuses a value that is not JSON, or too large, in the task, naming it', async () => {
    const refusals: unknown[] = [];
    const work = defineTask({
      name: 'work',
      run(_payload, ctx) {
        for (const value of [{ total: 10n }, 'x'.repeat(20_000)]) {
          try {
            ctx.progress(value as Json);
          } catch (error) {
            refusals.push(error);
          }
        }
      },
    });
    const runtime = runtimeWith({ tasks: [work] });
    const task = await runtime.enqueue(work, {});
    await runtime.drain();
    assert.equal(refusals.length, 2);
    assert.ok(refusals.every((error) => error instanceof InvalidPayloadError));
    const [bigint, large] = refusals as InvalidPayloadError[];
    assert.equal(bigint!.path, 'progress.total');
    assert.match(bigint!.message, /^progress\.total is a BigInt; send it as a string/);
    assert.match(large!.message, /^progress is 20002 characters of JSON, .* at most 16384/);
    assert.equal((await runtime.get(task.id))?.progress, null);
  });

  it("on SQLite, shows a running task's progress to another connection, and keeps the last after success", async () => {
    const temp = tempDir();
    const path = join(temp.dir, 'progress.db');
    const release = barrier();
    const work = defineTask({
      name: 'work',
      async run(_payload, ctx) {
        ctx.progress({ step: 1 });
        await release.promise;
        ctx.progress('done');
      },
    });
    const runtime = runtimeWith({ store: sqliteStore({ path }), tasks: [work] });
    const reader = sqliteStore({ path });
    try {
      await runtime.start();
      const reported = nextEvent(runtime, 'task:progress');
      const task = await runtime.enqueue(work, {});
      assert.deepEqual((await reported).progress, { step: 1 });
      await reader.open();
      const running = await reader.get(task.id);
      assert.deepEqual([running?.state, running?.progress], ['running', { step: 1 }]);
      release.open();
      await finished(runtime, task.id);
      const done = await reader.get(task.id);
      assert.deepEqual([done?.state, done?.progress], ['succeeded', 'done']);
    } finally {
      await runtime.stop();
      await reader.close();
      temp.remove();
    }
  });
});
