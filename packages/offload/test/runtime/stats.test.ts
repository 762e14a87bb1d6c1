import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRuntime, defineTask, memoryStore, PermanentError } from '../../src/index.js';
import { captureLogger, fakeClock } from '../helpers.js';

describe('runtime.stats', () => {
  it('counts tasks by name and state, and says since when the oldest due task waits', async () => {
    const clock = fakeClock();
    const ok = defineTask({ name: 'ok', run: () => undefined });
    const bad = defineTask({
      name: 'bad',
      run: () => {
        throw new PermanentError('no');
      },
    });
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [ok, bad],
      clock,
      logger: captureLogger(),
    });
    try {
      assert.deepEqual(await runtime.stats(), { counts: [], oldestDue: null });
      await runtime.enqueue(ok, {});
      await runtime.enqueue(bad, {});
      await runtime.drain();
      const queuedAt = clock.now();
      await runtime.enqueue(ok, {});
      await runtime.enqueue(ok, {}, { delay: 60_000 });
      clock.advance(5000);
      const stats = await runtime.stats();
      const counts = stats.counts
        .map(({ name, state, count }) => `${name}:${state}:${count}`)
        .sort();
      assert.deepEqual(counts, ['bad:failed:1', 'ok:queued:2', 'ok:succeeded:1']);
      assert.equal(stats.oldestDue?.getTime(), queuedAt);
    } finally {
      await runtime.stop();
    }
  });
});
