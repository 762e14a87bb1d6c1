import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteStore } from '../src/store/sqlite/index.js';
import { Checkpointer, START_AFTER_WRITES } from '../src/store/sqlite/checkpointer.js';
import { captureLogger, newStoredTask, waitUntil } from './helpers.js';

describe('sqlite checkpoints', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'offload-checkpoints-'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies the log into the database file from a thread once the store has written a while', async () => {
    const path = join(dir, 'busy', 'offload.db');
    const store = sqliteStore({ path });
    await store.open();
    try {
      assert.equal(store.readPragma('wal_autocheckpoint'), 1000, "SQLite's default at first");
      for (let i = 0; i < START_AFTER_WRITES; i++) await store.enqueue([newStoredTask()]);
      assert.equal(
        store.readPragma('wal_autocheckpoint'),
        16_000,
        "with the thread running, SQLite's own checkpoint is a safety net",
      );

      // About 1.6 MB of payloads: some 400 pages of log, far from the store's own checkpoint.
      const before = statSync(path).size;
      const padding = 'x'.repeat(16_000);
      await store.enqueue(
        Array.from({ length: 100 }, () => newStoredTask({ payload: JSON.stringify({ padding }) })),
      );
      await waitUntil('the database file to take in the log', async () => {
        return statSync(path).size > before + 1_500_000;
      });
    } finally {
      await store.close();
    }
    assert.equal(
      existsSync(`${path}-wal`),
      false,
      "the thread's connection closed with the store (the last connection to close removes the log)",
    );
  });

  it("finishes a thread's pass over a long log on the store's connection, so that the log starts over", async () => {
    const path = join(dir, 'restart.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE t (x TEXT)');
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    for (let i = 0; i < 100; i++) insert.run('x'.repeat(4000));
    const before = statSync(path).size;
    const { ino, dev } = statSync(path);
    const caughtUp = new URL('./fixtures/caught-up-thread.mjs', import.meta.url);
    const checkpointer = new Checkpointer(db, { path, ino, dev }, captureLogger(), caughtUp);
    try {
      for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
      await waitUntil('the store connection to copy the log', async () => {
        return statSync(path).size > before + 400_000;
      });
      insert.run('after');
      const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)') as [{ log: number }];
      assert.ok(log < 10, `the log started over at the next commit (${log} pages in it)`);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });

  describe('when the thread cannot run', () => {
    async function fallBack(
      path: string,
      make: (db: Database.Database, logger: ReturnType<typeof captureLogger>) => Checkpointer,
    ): Promise<{ reason: unknown; autocheckpoint: unknown }> {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      const logger = captureLogger();
      const checkpointer = make(db, logger);
      try {
        for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
        await waitUntil('the warning', async () => logger.entries.length > 0);
        const [warning] = logger.entries;
        assert.equal(warning?.level, 'warn');
        assert.match(
          warning.msg ?? '',
          /checkpoint thread stopped; checkpoints now run on the event loop/,
        );
        return {
          reason: warning.fields.reason,
          autocheckpoint: db.pragma('wal_autocheckpoint', { simple: true }),
        };
      } finally {
        await checkpointer.close();
        db.close();
      }
    }

    it('checkpoints on the store connection again, with a warning, when the thread fails', async () => {
      const path = join(dir, 'failing.db');
      const { reason, autocheckpoint } = await fallBack(path, (db, logger) => {
        const { ino, dev } = statSync(path);
        const failing = new URL('./fixtures/failing-thread.mjs', import.meta.url);
        return new Checkpointer(db, { path, ino, dev }, logger, failing);
      });
      assert.match(String(reason), /fails on purpose/);
      assert.equal(autocheckpoint, 1000);
    });

    it('does not checkpoint a file that is no longer the one the store opened', async () => {
      const path = join(dir, 'replaced.db');
      const { reason, autocheckpoint } = await fallBack(path, (db, logger) => {
        const { ino, dev } = statSync(path);
        return new Checkpointer(db, { path, ino: ino + 1, dev }, logger);
      });
      assert.match(String(reason), /no longer the database file the store opened/);
      assert.equal(autocheckpoint, 1000);
    });
  });
});
