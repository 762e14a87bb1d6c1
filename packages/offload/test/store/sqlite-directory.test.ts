import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeDirectory } from '../../src/sqlite/directory.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { FIXTURES, ROOT } from '../helpers.js';

const FIXTURE = join(FIXTURES, 'make-directory.ts');
/** Kills a child that hangs: a broken fix fails the test instead of hanging the run. */
const KILL_AFTER = 20_000;
/** Exists on Linux; creating anything in it fails with ENOENT, which made Node 20's recursive mkdir loop. */
const UNDER_PROC = '/proc/offload-forbidden/nested';

const dir = mkdtempSync(join(tmpdir(), 'offload-directory-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the fixture in a child killed with SIGKILL (the hang ignored SIGTERM) after KILL_AFTER. */
function runFixture(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', FIXTURE, ...args],
      { cwd: ROOT, timeout: KILL_AFTER, killSignal: 'SIGKILL' },
      (error, out, err) => {
        const killed = (error as { killed?: boolean } | null)?.killed === true;
        done({
          code: killed ? null : ((error as { code?: number } | null)?.code ?? 0),
          out,
          err: killed ? `killed after ${KILL_AFTER} ms: it hung\n${err}` : err,
        });
      },
    );
  });
}

describe('creating directories', () => {
  it('creates every missing level, and accepts a directory that exists', () => {
    const deep = join(dir, 'a', 'b', 'c');
    makeDirectory(deep);
    assert.ok(statSync(deep).isDirectory());
    makeDirectory(deep);
    makeDirectory(dir);
  });

  it('names the file that stands where a directory is needed', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    for (const target of [file, join(file, 'sub'), join(file, 'sub', 'deeper')]) {
      assert.throws(
        () => makeDirectory(target),
        new RegExp(`could not create the directory ${target}: ${file} is not a directory`),
      );
    }
  });

  it('fails at once under /proc, where a recursive mkdir looped forever', async () => {
    const store = await runFixture('store', join(UNDER_PROC, 'offload.db'));
    assert.equal(store.code, 1, store.err);
    assert.match(
      store.err,
      /could not open the SQLite database \/proc\/offload-forbidden\/nested\/offload\.db: could not create the directory \/proc\/offload-forbidden: ENOENT/,
    );
    const locks = await runFixture('locks', `${join(UNDER_PROC, 'offload.db')}.workers`);
    assert.equal(locks.code, 1, locks.err);
    assert.match(
      locks.err,
      /could not take the worker lock of "w1": could not create the directory \/proc\/offload-forbidden: ENOENT/,
    );
    assert.ok(!existsSync('/proc/offload-forbidden'));
  });

  it('creates the directories of a database and of its worker locks', async () => {
    const path = join(dir, 'x', 'y', 'offload.db');
    const store = await runFixture('store', path);
    assert.equal(store.code, 0, store.err);
    assert.ok(existsSync(path));
    const locks = await runFixture('locks', join(dir, 'p', 'q.workers'));
    assert.equal(locks.code, 0, locks.err);
    assert.ok(statSync(join(dir, 'p', 'q.workers')).isDirectory());
  });

  it('with mustExist, opens an existing database and creates none', async () => {
    const missing = join(dir, 'missing', 'offload.db');
    await assert.rejects(
      sqliteStore({ path: missing, mustExist: true }).open(),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'STORE_NOT_FOUND');
        assert.equal(
          error.message,
          `there is no SQLite database at ${missing}: the file does not exist`,
        );
        return true;
      },
    );
    assert.ok(!existsSync(join(dir, 'missing')));
    const path = join(dir, 'existing.db');
    const created = sqliteStore({ path });
    await created.open();
    await created.close();
    const existing = sqliteStore({ path, mustExist: true });
    await existing.open();
    assert.equal((await existing.list({ limit: 10 })).tasks.length, 0);
    await existing.close();
  });

  it('says so when the database path is a directory', async () => {
    await assert.rejects(sqliteStore({ path: dir }).open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'STORE_OPEN_FAILED');
      assert.match(
        error.message,
        new RegExp(
          `^could not open the SQLite database ${dir}: it is a directory, not a database file`,
        ),
      );
      return true;
    });
  });
});
