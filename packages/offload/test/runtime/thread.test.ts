import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createRuntime,
  defineTask,
  InvalidOptionError,
  memoryStore,
  TaskTimeoutError,
  type Runtime,
  type RuntimeOptions,
} from '../../src/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { count, exit, greet, refuse, spin, sum } from '../fixtures/thread-tasks.js';
import { captureLogger, newStoredTask, nextEvent, waitUntil } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'offload-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const runtimes: Runtime[] = [];
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.stop()));
});

function runtimeWith(options: Partial<RuntimeOptions> = {}) {
  const logger = captureLogger();
  const runtime = createRuntime({
    store: memoryStore(),
    tasks: [sum, spin, refuse, exit, count, greet],
    logger,
    shutdownGrace: 0,
    ...options,
  });
  runtimes.push(runtime);
  return { runtime, logger };
}

/** The size of a file the spinning task appends to, once it stopped changing for `quiet` ms. */
async function sizeOnceStill(file: string, quiet = 150): Promise<number> {
  let size = statSync(file).size;
  for (let i = 0; i < 50; i++) {
    await sleep(quiet);
    const now = statSync(file).size;
    if (now === size) return size;
    size = now;
  }
  throw new Error(`${file} kept growing: its thread was not terminated`);
}

describe("isolate: 'thread'", () => {
  it("checks the stored payload against the schema in the thread, and runs it with the schema's output", async () => {
    const store = memoryStore();
    await store.open();
    // Stored by an older version of the task: no longer what the schema takes.
    const [old] = await store.enqueue([
      newStoredTask({ name: 'thread.greet', payload: '{"name":7}', runAt: 0, createdAt: 0 }),
    ]);
    const { runtime } = runtimeWith({ store });
    const task = await runtime.enqueue(greet, { name: 'Ada' });
    await runtime.drain();
    assert.equal((await runtime.get(task.id))?.result, 'Hello, Ada');
    const failed = await runtime.get(old!.task.id);
    assert.deepEqual([failed?.state, failed?.attempts], ['failed', 1]);
    assert.equal(failed?.errors[0]?.name, 'PermanentError');
    assert.match(
      failed?.errors[0]?.message ?? '',
      /^payload\.name: Invalid input: expected string/,
    );
  });

  it('takes the progress a thread reports, checked in the thread, and stores the last with the outcome', async () => {
    const { runtime } = runtimeWith();
    const reported: unknown[] = [];
    runtime.on('task:progress', ({ progress }) => reported.push(progress));
    const task = await runtime.enqueue(count, { count: 500 });
    await runtime.drain();
    const done = await runtime.get(task.id);
    assert.equal(done?.state, 'succeeded');
    assert.deepEqual(done?.progress, { done: 500, total: 500 });
    assert.match(
      (done?.result as { refused: string }).refused,
      /^progress\.at is a Date, not a plain object/,
    );
    assert.deepEqual(reported.at(-1), { done: 500, total: 500 });
    assert.ok(reported.length < 500, `reports are coalesced, got ${reported.length} events`);
  });

  it('runs the attempt in a thread: the payload goes in, the result and the logs come back', async () => {
    const { runtime, logger } = runtimeWith();
    await runtime.start();
    const task = await runtime.enqueue(sum, { numbers: [1, 2, 3, 4] });
    await runtime.drain();
    const done = await runtime.get(task.id);
    assert.deepEqual([done?.state, done?.result], ['succeeded', { sum: 10, attempt: 1 }]);
    const line = logger.entries.find((e) => e.msg === 'adding in a thread');
    assert.deepEqual(line?.fields, { taskId: task.id, task: 'thread.sum', attempt: 1, count: 4 });
  });

  it('terminates a task that blocks its CPU at the timeout; the process keeps answering', async () => {
    // The timeout counts the thread's start too (under tsx a thread compiles its modules first),
    // which a busy machine slows: the timeout leaves it several times what a start takes there.
    const { runtime } = runtimeWith({ timeout: 5000 });
    await runtime.start();
    const file = join(dir, 'spin');
    writeFileSync(file, '');
    // Counts the turns of this process's event loop that saw the file grow since the turn before:
    // this thread and the spinning one ran side by side.
    let grew = 0;
    let size = 0;
    const ticker = setInterval(() => {
      const now = statSync(file).size;
      if (now > size) grew += 1;
      size = now;
    }, 10);
    try {
      const failed = nextEvent(runtime, 'task:error', 30_000);
      const task = await runtime.enqueue(spin, { file }, { maxAttempts: 1 });
      const { error } = await failed;
      assert.ok(error instanceof TaskTimeoutError);
      assert.ok(statSync(file).size > 0, 'the task did run');
      // The event loop of this process ran all along: the spinning was in another thread.
      assert.ok(grew >= 10, `the event loop saw the spinning thread write in ${grew} turns`);
      // Throws while the file keeps growing: the thread is gone, not just ignored.
      await sizeOnceStill(file);
      assert.equal((await runtime.get(task.id))?.state, 'failed');
      // The slot is free: another task runs.
      const next = await runtime.enqueue(sum, { numbers: [5] });
      await runtime.drain();
      assert.equal((await runtime.get(next.id))?.state, 'succeeded');
    } finally {
      clearInterval(ticker);
    }
  });

  it('on stop, terminates a spinning thread and hands its task back without using an attempt', async () => {
    const path = join(dir, 'stop.db');
    const { runtime } = runtimeWith({ store: sqliteStore({ path }), timeout: 60_000 });
    await runtime.start();
    const file = join(dir, 'spin-stop');
    writeFileSync(file, '');
    const task = await runtime.enqueue(spin, { file });
    // Stopped once the thread spins, not while it is still loading its modules.
    await waitUntil('the thread to spin', async () => statSync(file).size > 0, { timeout: 30_000 });
    await runtime.stop();
    await sizeOnceStill(file);
    const { runtime: next } = runtimeWith({ store: sqliteStore({ path }) });
    const handedBack = await next.get(task.id);
    assert.deepEqual([handedBack?.state, handedBack?.attempts], ['queued', 0]);
  });

  it('keeps the error classes: PermanentError fails at once; a thread that exits is a failure', async () => {
    const { runtime } = runtimeWith();
    await runtime.start();
    const refused = await runtime.enqueue(refuse, { why: 'no such account' });
    const exited = await runtime.enqueue(exit, {});
    await runtime.drain();
    const a = await runtime.get(refused.id);
    assert.deepEqual(
      [a?.state, a?.attempts, a?.errors[0]?.name, a?.errors[0]?.message],
      ['failed', 1, 'PermanentError', 'no such account'],
    );
    const b = await runtime.get(exited.id);
    assert.equal(b?.state, 'failed');
    assert.match(b?.errors[0]?.message ?? '', /thread exited with code 3/);
  });

  it('fails at once, not after every attempt, a task whose module does not load or export it', async () => {
    const threadTask = (name: string, module: string) =>
      defineTask({
        name,
        isolate: 'thread',
        module: new URL(module, import.meta.url).href,
        maxAttempts: 3,
        run() {},
      });
    const orphan = threadTask('orphan', '../fixtures/thread-tasks.ts');
    const missing = threadTask('missing', '../fixtures/no-such-module.mjs');
    const { runtime } = runtimeWith({ tasks: [orphan, missing] });
    const tasks = [await runtime.enqueue(orphan, {}), await runtime.enqueue(missing, {})];
    await runtime.drain();
    for (const [task, message] of [
      [tasks[0]!, /exports no task definition named "orphan"/],
      [tasks[1]!, /no-such-module\.mjs of this thread task could not be loaded/],
    ] as const) {
      const stored = await runtime.get(task.id);
      assert.deepEqual(
        [stored?.state, stored?.attempts, stored?.errors[0]?.name],
        ['failed', 1, 'PermanentError'],
      );
      assert.match(stored?.errors[0]?.message ?? '', message);
    }
  });

  it('refuses a thread task without the module that exports it', () => {
    assert.throws(
      () => defineTask({ name: 'x', isolate: 'thread', run: () => undefined }),
      (error: unknown) =>
        error instanceof InvalidOptionError && /import\.meta\.url/.test(error.message),
    );
    assert.throws(
      () =>
        defineTask({
          name: 'x',
          isolate: 'process' as 'thread',
          module: import.meta.url,
          run() {},
        }),
      InvalidOptionError,
    );
  });
});
