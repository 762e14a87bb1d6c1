/**
 * A SQLite database that cannot serve: the store reports the driver's error as a
 * `StoreUnavailableError` (why, what to check, the driver's code, the driver's error as its
 * cause), so that nothing above it reads a driver code. The full disk is a real one: a 1 MiB
 * tmpfs, which needs root (mount); that test is skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../../src/errors/store-unavailable.js';
import { fileMovedError, sqliteStoreError } from '../../src/sqlite/errors.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { newStoredTask, tempDir } from '../helpers.js';

const temp = tempDir();
const mountPoint = join(temp.dir, 'tmpfs');
/** Why the full-disk test cannot run here, or null. */
let cannotMount: string | null = null;

function run(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: 'pipe', timeout: 5000 });
}

before(() => {
  mkdirSync(mountPoint);
  try {
    run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mountPoint]);
  } catch (error) {
    cannotMount = `mounting a tmpfs is not permitted here (${String((error as { stderr?: unknown }).stderr ?? error).trim()}); run as root`;
  }
});
after(() => {
  if (cannotMount === null) run('umount', ['-l', mountPoint]);
  temp.remove();
});

/** Writes a file until the file system is full. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [64 * 1024, 4096, 1]) {
      for (;;) {
        try {
          writeSync(fd, Buffer.alloc(size));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Asserts that `error` is the store's report of the driver error `driverCode` (a prefix). */
function assertUnavailable(
  error: unknown,
  expected: { reason: string; driverCode: RegExp; hint: RegExp },
): asserts error is StoreUnavailableError {
  assert.ok(
    error instanceof StoreUnavailableError,
    `not a StoreUnavailableError: ${String(error)}`,
  );
  assert.equal(error.code, 'STORE_UNAVAILABLE');
  assert.equal(error.reason, expected.reason);
  assert.match(error.driverCode ?? '', expected.driverCode);
  assert.match(error.hint, expected.hint);
}

describe('sqlite store: a database that cannot serve', () => {
  it('reports a full disk as StoreUnavailableError, with the driver error as its cause, and takes writes again once space is freed', async (t) => {
    if (cannotMount) return t.skip(cannotMount);
    const store = sqliteStore({ path: join(mountPoint, 'full', 'offload.db'), busyTimeout: 25 });
    await store.open();
    const filler = join(mountPoint, 'filler');
    try {
      const kept = (await store.enqueue([newStoredTask()]))[0]!.task;
      fill(filler);
      // The log may still have room for a few commits: write until the first refusal.
      const payload = JSON.stringify({ text: 'x'.repeat(4096) });
      let refusal: unknown = null;
      for (let i = 0; i < 1000 && refusal === null; i++) {
        await store.enqueue([newStoredTask({ payload })]).catch((error: unknown) => {
          refusal = error;
        });
      }
      assertUnavailable(refusal, {
        reason: 'disk-full',
        driverCode: /^SQLITE_FULL/,
        hint: /disk of the SQLite database is full: free space on it/,
      });
      const cause = refusal.cause as Error & { code?: string };
      assert.ok(cause instanceof Error, 'the driver error is the cause');
      assert.equal(cause.code, refusal.driverCode);
      assert.equal(refusal.message, cause.message);

      // Not ready while writes fail; reads go on.
      await assert.rejects(store.ping(), (error: unknown) => {
        assertUnavailable(error, { reason: 'disk-full', driverCode: /^SQLITE_FULL/, hint: /free/ });
        assert.match(error.message, /cannot be written: database or disk is full/);
        return true;
      });
      assert.equal((await store.get(kept.id))?.id, kept.id);

      rmSync(filler);
      await store.enqueue([newStoredTask({ payload })]);
      await store.ping();
    } finally {
      rmSync(filler, { force: true });
      await store.close();
    }
  });

  it('reports a lock held by another process as StoreUnavailableError, which is no write fault', async () => {
    const path = join(temp.dir, 'locked', 'offload.db');
    const store = sqliteStore({ path, busyTimeout: 25 });
    await store.open();
    const holder = new Database(path);
    try {
      holder.exec('BEGIN EXCLUSIVE');
      const refused = await store.enqueue([newStoredTask()]).then(
        () => assert.fail('a write went through the exclusive lock of another connection'),
        (error: unknown) => error,
      );
      assertUnavailable(refused, {
        reason: 'locked',
        driverCode: /^SQLITE_BUSY/,
        hint: /locked by another process/,
      });
      assert.equal((refused.cause as { code?: string }).code, refused.driverCode);
      holder.exec('ROLLBACK');
      // Contention is not a fault of the disk: the store is ready as soon as the lock is free.
      await store.ping();
      await store.enqueue([newStoredTask()]);
    } finally {
      holder.close();
      await store.close();
    }
  });
});

describe('sqlite store: what it reports of a driver error', () => {
  const driverError = (code: string, message = 'the driver says') =>
    Object.assign(new Error(message), { code });

  for (const [code, reason] of [
    ['SQLITE_FULL', 'disk-full'],
    ['SQLITE_READONLY', 'read-only'],
    ['SQLITE_READONLY_DBMOVED', 'read-only'],
    ['SQLITE_IOERR_WRITE', 'io-error'],
    ['SQLITE_CANTOPEN', 'cannot-open'],
    ['SQLITE_BUSY', 'locked'],
    ['SQLITE_LOCKED_SHAREDCACHE', 'locked'],
    ['SQLITE_CORRUPT', 'corrupt'],
    ['SQLITE_NOTADB', 'not-a-database'],
  ] as const) {
    it(`reports ${code} as unavailable (${reason}), keeping the driver's code, message and error`, () => {
      const original = driverError(code);
      const reported = sqliteStoreError(original);
      assert.ok(reported instanceof StoreUnavailableError);
      assert.deepEqual(
        [reported.reason, reported.driverCode, reported.message, reported.cause],
        [reason, code, 'the driver says', original],
      );
      assert.ok(reported.hint.length > 0);
      assert.equal(sqliteStoreError(reported), reported, 'reported once');
    });
  }

  it('returns any other error as it is: a bug or a bad request is no outage', () => {
    for (const error of [
      driverError('SQLITE_CONSTRAINT_UNIQUE'),
      driverError('SQLITE_ERROR', 'no such table: offload_tasks'),
      driverError('SQLITE_FULLNESS'),
      new TypeError('x is undefined'),
      'a string',
      null,
    ]) {
      assert.equal(sqliteStoreError(error), error);
    }
  });

  it('reports a database file deleted or replaced under the store as unavailable, without a driver code', () => {
    const error = fileMovedError('the SQLite database file /data/offload.db was deleted');
    assert.deepEqual(
      [error.code, error.reason, error.driverCode],
      ['STORE_UNAVAILABLE', 'file-moved', null],
    );
    assert.match(error.hint, /deleted or replaced .*restore it, or restart the process/);
  });
});
