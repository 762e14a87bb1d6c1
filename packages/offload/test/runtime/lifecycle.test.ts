import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineTask, MemoryStore, type TaskContext } from '../../src/index.js';
import type { ClaimedTask, ClaimRequest } from '../../src/store/store.js';
import { barrier, memoryRuntimes, nextEvent } from '../helpers.js';

const runtimeWith = memoryRuntimes();

/** A memory store that counts its claims. */
class CountingStore extends MemoryStore {
  claims = 0;

  override claim(request: ClaimRequest): Promise<ClaimedTask[]> {
    this.claims += 1;
    return super.claim(request);
  }
}

describe('runtime lifecycle', () => {
  it('returns one promise from start() and one from stop(), however often and however close together they are called', async () => {
    const runtime = runtimeWith({});
    const started = runtime.start();
    assert.equal(runtime.start(), started);
    await started;
    assert.equal(runtime.start(), started, 'the same promise once started');
    const stopping = runtime.stop();
    const again = runtime.stop();
    assert.equal(again, stopping);
    await stopping;
    assert.equal(runtime.stop(), stopping, 'the same promise once stopped');
    await assert.rejects(runtime.start(), { code: 'RUNTIME_STOPPED' });
  });

  it('stopped while it starts, claims nothing, resolves its start and closes the store', async () => {
    const store = new CountingStore();
    const noop = defineTask({ name: 'noop', run: () => {} });
    const runtime = runtimeWith({ store, tasks: [noop] });
    const task = await runtime.enqueue(noop, {});
    const started = runtime.start();
    const stopped = runtime.stop();
    await Promise.all([started, stopped]);
    assert.equal(store.claims, 0);
    await assert.rejects(runtime.get(task.id), { code: 'RUNTIME_STOPPED' });
    await store.open();
    assert.equal((await store.get(task.id))?.state, 'queued');
  });

  it('takes tasks and answers reads while running tasks have their grace, and refuses tasks once they were handed back', async () => {
    const gate = barrier();
    const slow = defineTask({
      name: 'slow',
      run: (_payload, ctx: TaskContext) =>
        new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => resolve());
          void gate.promise.then(resolve);
        }),
    });
    const runtime = runtimeWith({ tasks: [slow], shutdownGrace: 60_000 });
    await runtime.start();
    const started = nextEvent(runtime, 'task:start');
    const running = await runtime.enqueue(slow, {});
    await started;
    const stopping = runtime.stop();
    const later = await runtime.enqueue('elsewhere', { n: 1 });
    assert.equal(later.state, 'queued', 'stored during the grace');
    assert.equal((await runtime.get(running.id))?.state, 'running');
    gate.open();
    await stopping;
    await assert.rejects(runtime.enqueue('elsewhere', { n: 2 }), { code: 'RUNTIME_STOPPED' });
    await assert.rejects(runtime.drain(), { code: 'RUNTIME_STOPPED' });
  });

  it('drains without start(), and alongside a started runtime', async () => {
    const ran: number[] = [];
    const record = defineTask<number>({ name: 'record', run: (n) => void ran.push(n) });
    const runtime = runtimeWith({ tasks: [record] });
    await runtime.enqueue(record, 1);
    await runtime.drain();
    assert.deepEqual(ran, [1]);
    await runtime.enqueue(record, 2);
    await runtime.start();
    await runtime.enqueue(record, 3);
    await runtime.drain();
    assert.deepEqual(
      ran.sort((a, b) => a - b),
      [1, 2, 3],
    );
  });
});
