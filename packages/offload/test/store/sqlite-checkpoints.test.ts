import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteStore } from '../../src/sqlite/index.js';
import {
  Checkpointer,
  RESTART_DELAY_MS,
  START_AFTER_WRITES,
} from '../../src/sqlite/checkpointer.js';
import { DatabaseFiles } from '../../src/sqlite/database-files.js';
import { captureLogger, newStoredTask, waitUntil } from '../helpers.js';

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
    const files = new DatabaseFiles(path);
    const caughtUp = new URL('../fixtures/caught-up-thread.mjs', import.meta.url);
    const checkpointer = new Checkpointer(db, files, captureLogger(), caughtUp);
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
      files.close();
    }
  });

  describe('when the thread cannot run', () => {
    const failing = new URL('../fixtures/failing-thread.mjs', import.meta.url);

    /** A WAL database, its files, and a clock that moves only when told. */
    async function withDatabase(
      name: string,
      body: (db: Database.Database, files: DatabaseFiles, clock: { now: number }) => Promise<void>,
    ): Promise<void> {
      const path = join(dir, name);
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE IF NOT EXISTS t (x TEXT)');
      const files = new DatabaseFiles(path);
      try {
        await body(db, files, { now: 0 });
      } finally {
        db.close();
        files.close();
      }
    }

    async function warnings(logger: ReturnType<typeof captureLogger>, count: number) {
      await waitUntil('the warning', async () => logger.entries.length >= count);
      for (const warning of logger.entries) {
        assert.equal(warning.level, 'warn');
        assert.match(
          warning.msg ?? '',
          /checkpoint thread stopped; checkpoints run on the event loop meanwhile/,
        );
      }
      return logger.entries;
    }

    it('checkpoints on the store connection, with a warning, when the thread fails', async () => {
      await withDatabase('failing.db', async (db, files) => {
        const logger = captureLogger();
        const checkpointer = new Checkpointer(db, files, logger, failing);
        try {
          for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
          const [warning] = await warnings(logger, 1);
          assert.match(String(warning!.fields.reason), /fails on purpose/);
          assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
        } finally {
          await checkpointer.close();
        }
      });
    });

    it('starts the thread again with the first write once the restart delay has passed', async () => {
      await withDatabase('restarting.db', async (db, files, clock) => {
        const logger = captureLogger();
        const checkpointer = new Checkpointer(db, files, logger, failing, () => clock.now);
        try {
          for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
          await warnings(logger, 1);
          clock.now += RESTART_DELAY_MS - 1;
          for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
          clock.now += 1;
          checkpointer.wrote();
          // The restarted thread fails again, as the first did: a second warning.
          const [, second] = await warnings(logger, 2);
          assert.equal(logger.entries.length, 2, 'no start before the delay had passed');
          assert.equal(second!.fields.restartInMs, RESTART_DELAY_MS);
        } finally {
          await checkpointer.close();
        }
      });
    });

    it('does not checkpoint a file that is no longer the one the store opened', async () => {
      await withDatabase('replaced.db', async (db, files) => {
        const logger = captureLogger();
        const other = { path: files.path, ino: files.ino + 1, dev: files.dev, fd: files.fd };
        const checkpointer = new Checkpointer(db, other, logger);
        try {
          for (let i = 0; i < START_AFTER_WRITES; i++) checkpointer.wrote();
          const [warning] = await warnings(logger, 1);
          assert.match(
            String(warning!.fields.reason),
            /no longer the database file the store opened/,
          );
        } finally {
          await checkpointer.close();
        }
      });
    });
  });
});
