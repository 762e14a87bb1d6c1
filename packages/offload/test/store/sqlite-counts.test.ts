import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteStore, type SqliteStore } from '../../src/sqlite/index.js';
import { COUNT_IN_THREAD_ABOVE, Counter } from '../../src/sqlite/counter.js';
import { DatabaseFiles } from '../../src/sqlite/database-files.js';
import { prepareStatements } from '../../src/sqlite/statements.js';
import { captureLogger, newStoredTask, T0 } from '../helpers.js';

const LARGE = COUNT_IN_THREAD_ABOVE + 5_000;

/** Counts by "state name", as the store reports them. */
function byKey(counts: { name: string; state: string; count: number }[]): Map<string, number> {
  return new Map(counts.map((c) => [`${c.state} ${c.name}`, c.count]));
}

/** Resolves with what finished first: the promise, or a turn of the event loop after it began. */
async function firstOf(work: Promise<unknown>): Promise<'work' | 'event loop'> {
  const turn = new Promise<'event loop'>((resolve) => setImmediate(() => resolve('event loop')));
  const winner = await Promise.race([work.then(() => 'work' as const), turn]);
  await work;
  return winner;
}

describe('sqlite store counts', () => {
  let dir: string;
  let path: string;
  let store: SqliteStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'offload-counts-'));
    path = join(dir, 'offload.db');
    store = sqliteStore({ path });
    await store.open();
    for (let i = 0; i < LARGE; i += 1000) {
      await store.enqueue(
        Array.from({ length: 1000 }, (_, j) => newStoredTask({ name: `job${(i + j) % 3}` })),
      );
    }
  });

  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts a large store on a thread, answering other work meanwhile, and sees every commit', async () => {
    const counted = store.stats(T0);
    assert.equal(await firstOf(counted), 'event loop', 'the event loop turned during the count');
    assert.deepEqual(
      byKey((await counted).counts),
      new Map([
        ['queued job0', Math.ceil(LARGE / 3)],
        ['queued job1', Math.ceil((LARGE - 1) / 3)],
        ['queued job2', Math.ceil((LARGE - 2) / 3)],
      ]),
    );

    const [added] = await store.enqueue([newStoredTask({ name: 'job9' })]);
    await store.cancel(added!.task.id, T0);
    const again = byKey((await store.stats(T0)).counts);
    assert.equal(again.get('canceled job9'), 1, 'a commit just made is counted');
    assert.equal(again.get('queued job0'), Math.ceil(LARGE / 3));
  });

  it('counts concurrent askers once, with one thread', async () => {
    const [a, b] = await Promise.all([store.stats(T0), store.stats(T0)]);
    assert.deepEqual(byKey(a.counts), byKey(b.counts));
  });

  it('counts on the event loop when the thread fails, and says so', async () => {
    const db = new Database(path);
    const files = new DatabaseFiles(path);
    const logger = captureLogger();
    const broken = new Counter(
      prepareStatements(db),
      files,
      logger,
      new URL('./no-such-count-thread.js', import.meta.url),
    );
    try {
      const counts = await broken.count();
      assert.equal(byKey(counts).get('queued job0'), Math.ceil(LARGE / 3));
      const warning = logger.entries.find((e) => e.level === 'warn');
      assert.match(warning?.msg ?? '', /counting the tasks on a thread failed/);
    } finally {
      await broken.close();
      db.close();
      files.close();
    }
  });

  it('counts a small store on its own connection, at once', async () => {
    const small = sqliteStore({ path: join(dir, 'small.db') });
    await small.open();
    try {
      await small.enqueue([newStoredTask({ name: 'job' })]);
      const counted = small.stats(T0);
      assert.equal(await firstOf(counted), 'work');
      assert.deepEqual(byKey((await counted).counts), new Map([['queued job', 1]]));
    } finally {
      await small.close();
    }
  });
});
