import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineTask, InvalidOptionError, memoryStore } from '../../src/index.js';
import { memoryRuntimes } from '../helpers.js';

const runtimeWith = memoryRuntimes();

describe('enqueue by definition and by name', () => {
  const listed = defineTask({ name: 'listed', run: () => {} });
  const unlisted = defineTask({ name: 'unlisted', run: () => {} });

  it('refuses a function or any other value that is not a definition, saying what a task is', async () => {
    const runtime = runtimeWith({ tasks: [listed] });
    const sendWelcome = () => {};
    for (const [task, what] of [
      [sendWelcome, 'a function'],
      [42, '42'],
      [null, 'null'],
    ] as const) {
      await assert.rejects(runtime.enqueue(task as never, {} as never), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.match(
          error.message,
          /must be a defineTask\(\.\.\.\) definition, or the name of one/,
        );
        assert.ok(error.message.includes(`got ${what}`), error.message);
        return true;
      });
    }
    assert.equal((await runtime.list()).tasks.length, 0);
  });

  it('refuses a definition the runtime was not given, saying how to fix it, and stores nothing', async () => {
    const runtime = runtimeWith({ tasks: [listed] });
    await assert.rejects(runtime.enqueue(unlisted, {}), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.equal(error.code, 'INVALID_OPTION');
      assert.equal(
        error.message,
        'enqueue task: the definition of "unlisted" was not given to this runtime, so it would not run here; add it to createRuntime({ tasks }), or enqueue it by name ("unlisted") if another process runs it',
      );
      return true;
    });
    await assert.rejects(
      runtime.enqueueMany([
        { task: listed, payload: {} },
        { task: unlisted, payload: {} },
      ]),
      /add it to createRuntime\(\{ tasks \}\)/,
    );
    assert.equal((await runtime.list()).tasks.length, 0, 'nothing was stored');
  });

  it('refuses a second definition under the name of one the runtime was given', async () => {
    const runtime = runtimeWith({ tasks: [listed] });
    const twin = defineTask({ name: 'listed', run: () => {}, priority: 5 });
    await assert.rejects(
      runtime.enqueue(twin, {}),
      /enqueue task: two definitions are named "listed"; enqueue the one given to createRuntime\(\{ tasks \}\)/,
    );
    await assert.rejects(runtime.enqueue({ ...listed }, {}), /two definitions are named "listed"/);
    assert.equal((await runtime.list()).tasks.length, 0, 'nothing was stored');
  });

  it('stores a task enqueued by name for another process, which runs it with its definition', async () => {
    const store = memoryStore();
    const ran: unknown[] = [];
    const report = defineTask({
      name: 'report',
      maxAttempts: 2,
      run: (payload) => void ran.push(payload),
    });
    const api = runtimeWith({ store });
    const worker = runtimeWith({ store, tasks: [report] });
    const queued = await api.enqueue('report', { day: 1 });
    assert.deepEqual([queued.name, queued.state, queued.maxAttempts], ['report', 'queued', 5]);
    await api.drain();
    assert.deepEqual(ran, [], 'the process without the definition leaves it queued');
    const byName = await worker.enqueue('report', { day: 2 });
    assert.equal(
      byName.maxAttempts,
      2,
      'by name, a process that has the definition uses its policy',
    );
    await worker.drain();
    assert.deepEqual(ran, [{ day: 1 }, { day: 2 }]);
  });
});
