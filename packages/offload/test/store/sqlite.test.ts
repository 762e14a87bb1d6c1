import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openStore as openStoreUrl } from '../../src/store/open.js';
import { sqliteStore, type SqliteStore } from '../../src/sqlite/index.js';
import { MIGRATIONS, migrate, SCHEMA_VERSION } from '../../src/sqlite/migrations.js';
import { prepareClaim, prepareStatements, type EndAttempt } from '../../src/sqlite/statements.js';
import type { EnqueueResult } from '../../src/store/store.js';
import { newStoredTask, T0 } from '../helpers.js';
import { storeConformance } from './conformance/index.js';
import { prepareGroupStatements, prepareKeyStatements } from '../../src/sqlite/groups.js';

const HOUR = 60 * 60 * 1000;
/** Upper bound of every wait on a child process: a broken test fails instead of hanging. */
const CHILD_TIMEOUT = 20_000;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'offload-sqlite-'));
}

storeConformance('sqlite file', async () => {
  const dir = tempDir();
  return {
    store: sqliteStore({ path: join(dir, 'offload.db') }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    connect: () => sqliteStore({ path: join(dir, 'offload.db') }),
  };
});

storeConformance('sqlite :memory:', async () => ({
  store: sqliteStore({ path: ':memory:' }),
  cleanup: async () => {},
}));

describe('sqlite store', () => {
  let dir: string;
  const open: SqliteStore[] = [];

  before(() => {
    dir = tempDir();
  });

  after(async () => {
    for (const store of open) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  let counter = 0;
  async function openStore(
    path = join(dir, `db-${++counter}`, 'offload.db'),
  ): Promise<SqliteStore> {
    const store = sqliteStore({ path, busyTimeout: 1234 });
    await store.open();
    open.push(store);
    return store;
  }

  it('opens in WAL mode with synchronous NORMAL and the busy timeout, creating the directory', async () => {
    const path = join(dir, 'deep', 'er', 'offload.db');
    const store = await openStore(path);
    assert.ok(existsSync(path));
    assert.equal(store.readPragma('journal_mode'), 'wal');
    assert.equal(store.readPragma('synchronous'), 1);
    assert.equal(store.readPragma('busy_timeout'), 1234);
    assert.equal(store.readPragma('user_version'), SCHEMA_VERSION);
    await store.close();
    await store.open();
    assert.equal(store.readPragma('synchronous'), 1, 'synchronous is set again on every open');
  });

  it('polls without taking the write lock when nothing is due', async () => {
    const path = join(dir, 'poll', 'offload.db');
    const store = sqliteStore({ path, busyTimeout: 50 });
    await store.open();
    open.push(store);
    await store.registerWorker('poller');
    await store.enqueue([newStoredTask({ runAt: T0 + HOUR })]);
    const writer = new Database(path);
    writer.exec('BEGIN IMMEDIATE'); // another process writing at length
    try {
      const claim = { owner: 'poller', names: ['job'], limit: 10, leaseExpiresAt: T0 + 2 * HOUR };
      assert.deepEqual(await store.claim({ ...claim, now: T0 }), [], 'nothing due: no lock needed');
      await assert.rejects(store.claim({ ...claim, now: T0 + HOUR }), {
        code: 'STORE_UNAVAILABLE',
        reason: 'locked',
        driverCode: 'SQLITE_BUSY',
      });
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
  });

  it('keeps tasks when the file is opened again', async () => {
    const first = await openStore();
    const [{ task }] = (await first.enqueue([
      newStoredTask({ key: 'k', payload: '{"kept":true}' }),
    ])) as [EnqueueResult];
    await first.close();
    const second = await openStore(first.path);
    assert.deepEqual((await second.get(task.id))?.payload, { kept: true });
    const [again] = await second.enqueue([newStoredTask({ key: 'k' })]);
    assert.equal(again!.created, false);
  });

  it('migrates a database of schema version 1, keeping its tasks', async () => {
    const path = join(dir, 'v1.db');
    const raw = new Database(path);
    raw.exec(MIGRATIONS[0]!);
    raw.pragma('user_version = 1');
    raw.exec(`INSERT INTO offload_tasks (id, name, payload, state, max_attempts, run_at, created_at)
              VALUES (7, 'old', '{"from":1}', 'succeeded', 3, 0, 0)`);
    raw.close();
    const store = await openStore(path);
    assert.equal(store.readPragma('user_version'), SCHEMA_VERSION);
    const task = await store.get('7');
    assert.deepEqual([task?.payload, task?.state, task?.result], [{ from: 1 }, 'succeeded', null]);
  });

  it('migrates a database of schema version 2, keeping every row as it was, unknown states too', async () => {
    const path = join(dir, 'v2.db');
    const raw = new Database(path);
    raw.exec(MIGRATIONS[0]! + MIGRATIONS[1]!);
    raw.pragma('user_version = 2');
    raw.exec(`INSERT INTO offload_tasks (id, name, payload, state, max_attempts, key, run_at, created_at, finished_at, result)
              VALUES (3, 'old', '{"n":3}', 'succeeded', 3, 'k3', 10, 5, 20, '"done"'),
                     (4, 'old', '{"n":4}', 'queued', 3, NULL, 30, 25, NULL, NULL)`);
    raw.pragma('ignore_check_constraints = ON');
    raw.exec(`INSERT INTO offload_tasks (id, name, payload, state, max_attempts, run_at, created_at)
              VALUES (5, 'old', '{}', 'archived', 3, 0, 0)`);
    const before = raw.prepare('SELECT * FROM offload_tasks ORDER BY id').all();
    raw.close();

    const store = await openStore(path);
    assert.equal(store.readPragma('user_version'), SCHEMA_VERSION);
    const check = new Database(path);
    try {
      // The columns of version 2 keep every value; later steps only add columns.
      const columns = Object.keys(before[0] as object).join(', ');
      assert.deepEqual(
        check.prepare(`SELECT ${columns} FROM offload_tasks ORDER BY id`).all(),
        before,
      );
      assert.throws(
        () => check.exec(`UPDATE offload_tasks SET state = 'done' WHERE id = 4`),
        /CHECK constraint failed/,
      );
    } finally {
      check.close();
    }
    const finished = await store.list({ state: 'succeeded', limit: 10 });
    assert.deepEqual(
      finished.tasks.map((task) => [task.id, task.result]),
      [['3', 'done']],
    );
    const [again] = await store.enqueue([newStoredTask({ key: 'k3' })]);
    assert.equal(again!.created, false, 'the key index was built again');
    const [next] = await store.enqueue([newStoredTask()]);
    assert.equal(next!.task.id, '6', 'ids go on above the copied rows');
  });

  it('migrates a database of schema version 3, counting its tasks from the indexes alone', async () => {
    const path = join(dir, 'v3.db');
    const raw = new Database(path);
    raw.exec(MIGRATIONS.slice(0, 3).join(''));
    raw.pragma('user_version = 3');
    raw.exec(`INSERT INTO offload_tasks (id, name, payload, state, max_attempts, run_at, created_at, finished_at, lease_owner, lease_expires_at)
              VALUES (1, 'a', '{}', 'queued', 3, 10, 0, NULL, NULL, NULL),
                     (2, 'a', '{}', 'succeeded', 3, 0, 0, 5, NULL, NULL),
                     (3, 'b', '{}', 'queued', 3, 20, 0, NULL, NULL, NULL),
                     (4, 'a', '{}', 'queued', 3, 30, 0, NULL, NULL, NULL),
                     (5, 'b', '{}', 'running', 3, 0, 0, NULL, 'w', 99),
                     (6, 'b', '{}', 'canceled', 3, 0, 0, 7, NULL, NULL)`);
    raw.close();
    const store = await openStore(path);
    assert.equal(store.readPragma('user_version'), SCHEMA_VERSION);
    const stats = await store.stats(25);
    assert.deepEqual(
      stats.counts.sort((x, y) => `${x.name}/${x.state}`.localeCompare(`${y.name}/${y.state}`)),
      [
        { name: 'a', state: 'queued', count: 2 },
        { name: 'a', state: 'succeeded', count: 1 },
        { name: 'b', state: 'canceled', count: 1 },
        { name: 'b', state: 'queued', count: 1 },
        { name: 'b', state: 'running', count: 1 },
      ],
    );
    assert.equal(stats.oldestDue, 10);
  });

  it('refuses a database written by a newer schema version, naming the file', async () => {
    const path = join(dir, 'newer.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const store = sqliteStore({ path });
    await assert.rejects(store.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'STORE_SCHEMA_TOO_NEW');
      assert.ok(error.message.includes(path));
      assert.match(error.message, /newer/);
      return true;
    });
    await assert.rejects(store.get('1'), /not open/);
  });

  it('explains a file that cannot be opened', async () => {
    const notADatabase = join(dir, 'text.db');
    writeFileSync(
      notADatabase,
      'this is not a SQLite database, just some text that is long enough',
    );
    const blockedDir = join(dir, 'a-file');
    writeFileSync(blockedDir, '');
    for (const path of [notADatabase, join(blockedDir, 'offload.db'), dir]) {
      await assert.rejects(sqliteStore({ path }).open(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'STORE_OPEN_FAILED');
        assert.ok(error.message.includes(path), error.message);
        assert.match(error.message, /Check that/);
        return true;
      });
    }
  });

  it('refuses a URL as a path, and options it does not know, before touching the disk', async () => {
    const url = `file:${join(dir, 'url', 'x.db')}`;
    assert.throws(() => sqliteStore({ path: url }), /sqliteStore\.path: must be a path, not a URL/);
    assert.ok(!existsSync('file:'), 'no directory named "file:" was made');
    assert.throws(
      () => sqliteStore({ path: join(dir, 'x.db'), busytimeout: 10 } as never),
      /sqliteStore options\.busytimeout: is not an option; did you mean "busyTimeout"/,
    );
    await assert.rejects(openStoreUrl(undefined as never), /openStore url: must be a store URL/);
  });

  it('claims a row whose payload is not JSON with payloadError set, without breaking the batch', async () => {
    const store = await openStore();
    const results = await store.enqueue([
      newStoredTask(),
      newStoredTask(),
      newStoredTask({ payload: '"fine"' }),
    ]);
    const broken = results[1]!.task.id;
    const raw = new Database(store.path);
    raw
      .prepare('UPDATE offload_tasks SET payload = ?, errors = ?, result = ? WHERE id = ?')
      .run('{not json', 'not json', '{half', Number(broken));
    raw.close();
    await store.registerWorker('w');
    const claimed = await store.claim({
      owner: 'w',
      names: ['job'],
      limit: 10,
      now: T0,
      leaseExpiresAt: T0 + HOUR,
    });
    assert.deepEqual(
      claimed.map((t) => t.id),
      results.map((r) => r.task.id),
    );
    const bad = claimed[1]!;
    assert.equal(bad.payload, null);
    assert.match(bad.payloadError ?? '', /not valid JSON/);
    assert.deepEqual(bad.errors, [], 'bad errors read too');
    assert.equal(bad.state, 'running');
    assert.equal(bad.result, null, 'a claimed task has no result yet');
    assert.equal((await store.get(bad.id))?.result, '{half', 'a bad result is read as its text');
    assert.equal(claimed[0]!.payloadError, null);
    assert.deepEqual(claimed[2]!.payload, 'fine');
    assert.equal(await store.get('x'), null);
  });

  it('never reuses an id after prune, even across a reopen', async () => {
    const store = await openStore();
    const first = await store.enqueue([newStoredTask(), newStoredTask()]);
    for (const { task } of first) await store.cancel(task.id, T0);
    assert.equal(await store.prune(T0 + 1, 10), 2);
    const [second] = await store.enqueue([newStoredTask()]);
    assert.ok(Number(second!.task.id) > Number(first[1]!.task.id));
    await store.cancel(second!.task.id, T0);
    await store.prune(T0 + 1, 10);
    await store.close();
    await store.open();
    const [third] = await store.enqueue([newStoredTask()]);
    assert.ok(Number(third!.task.id) > Number(second!.task.id));
  });

  it('rejects a bad cursor with a clear error', async () => {
    const store = await openStore();
    await assert.rejects(store.list({ limit: 5, cursor: 'abc' }), { code: 'INVALID_CURSOR' });
  });

  it('checks worker names, and refuses a claim by a worker it has not registered', async () => {
    const store = await openStore();
    for (const owner of ['', 'a/b', '../x', 'host:123', 'x'.repeat(201)]) {
      await assert.rejects(store.registerWorker(owner), TypeError);
    }
    await assert.rejects(
      store.claim({
        owner: 'stranger',
        names: ['job'],
        limit: 1,
        now: T0,
        leaseExpiresAt: T0 + HOUR,
      }),
      /registerWorker\("stranger"\)/,
    );
  });

  it('holds a lock file per worker and deletes it on unregister and on close', async () => {
    const store = await openStore();
    const lockOf = (owner: string) => join(`${store.path}.workers`, `${owner}.lock`);
    await store.registerWorker('one');
    await store.registerWorker('one');
    await store.registerWorker('two');
    assert.ok(existsSync(lockOf('one')));
    assert.ok(existsSync(lockOf('two')));
    await store.unregisterWorker('one');
    await store.unregisterWorker('one');
    assert.ok(!existsSync(lockOf('one')));
    await store.close();
    await store.close();
    assert.ok(!existsSync(lockOf('two')));
  });

  it('rescues at once the tasks of a worker whose lock is gone, not those of a live one', async () => {
    const a = await openStore();
    const b = await openStore(a.path);
    await a.enqueue([newStoredTask(), newStoredTask()]);
    await a.registerWorker('worker-a');
    await b.registerWorker('worker-b');
    const [taskA] = await a.claim({
      owner: 'worker-a',
      names: ['job'],
      limit: 1,
      now: T0,
      leaseExpiresAt: T0 + HOUR,
    });
    const [taskB] = await b.claim({
      owner: 'worker-b',
      names: ['job'],
      limit: 1,
      now: T0,
      leaseExpiresAt: T0 + HOUR,
    });
    // Each sees the other alive through its lock (another connection of this same process).
    assert.deepEqual(await a.rescue(T0 + 1), []);
    assert.deepEqual(await b.rescue(T0 + 1), []);
    await a.unregisterWorker('worker-a');
    const rescued = await b.rescue(T0 + 2);
    assert.deepEqual(
      rescued.map((r) => [r.task.id, r.owner, r.task.state, r.task.attempts]),
      [[taskA!.id, 'worker-a', 'queued', 1]],
    );
    assert.equal((await b.get(taskB!.id))?.state, 'running');
  });

  it('takes a lock file left without a lock as a dead worker, and deletes it', async () => {
    const store = await openStore();
    await store.enqueue([newStoredTask()]);
    await store.registerWorker('gone');
    await store.claim({
      owner: 'gone',
      names: ['job'],
      limit: 1,
      now: T0,
      leaseExpiresAt: T0 + HOUR,
    });
    // Simulate a crash: the row still names the owner, the file is there but nobody locks it.
    const other = await openStore(store.path);
    await store.unregisterWorker('gone');
    const lock = join(`${store.path}.workers`, 'gone.lock');
    writeFileSync(lock, '');
    const rescued = await other.rescue(T0 + 1);
    assert.equal(rescued.length, 1);
    assert.equal(rescued[0]!.owner, 'gone');
    assert.ok(!existsSync(lock));
  });

  it('rescues the task of a SIGKILLed worker process at once, and not before it dies', async () => {
    const store = await openStore();
    const [{ task }] = (await store.enqueue([newStoredTask()])) as [EnqueueResult];
    const fixture = fileURLToPath(new URL('../fixtures/sqlite-worker.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fixture, store.path, 'child-worker', String(T0)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const line = await firstLine(child);
      assert.equal(line, `claimed ${task.id}`);
      assert.equal((await store.get(task.id))?.state, 'running');

      // Alive, with a lease valid for an hour: not rescued.
      assert.deepEqual(await store.rescue(T0 + 1000), []);
      assert.equal((await store.get(task.id))?.state, 'running');

      child.kill('SIGKILL');
      await exited(child);
      const rescued = await store.rescue(T0 + 2000);
      assert.equal(rescued.length, 1, 'the dead worker’s task comes back before its lease expires');
      assert.equal(rescued[0]!.task.id, task.id);
      assert.equal(rescued[0]!.owner, 'child-worker');
      assert.equal(rescued[0]!.task.state, 'queued');
      assert.equal(rescued[0]!.task.attempts, 1);
      assert.equal(rescued[0]!.task.errors[0]?.name, 'TaskInterruptedError');
      assert.ok(!existsSync(join(`${store.path}.workers`, 'child-worker.lock')));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('uses an index for every query, and sorts only to list queued or running tasks (EXPLAIN QUERY PLAN)', () => {
    const path = join(dir, 'plan.db');
    const db = new Database(path);
    migrate(db, path);
    const statements = prepareStatements(db);
    const groups = prepareGroupStatements(db);
    const end: EndAttempt = {
      id: 1,
      lease: 1,
      state: 'queued',
      refund: 0,
      runAt: 1,
      finishedAt: null,
      error: null,
      result: null,
      progress: null,
    };
    const page = { below: 1, name: 'a', limit: 1 };
    const checks: [string, string, unknown[]][] = [
      [
        'insert',
        statements.insert.source,
        [1, 'a', '{}', 0, 1, null, null, 1, 1, 'g', 1, 1, 1, null],
      ],
      ['nextId', statements.nextId.source, []],
      ['claim', prepareClaim(db, 2).source, [1, 'w', 2, 0, 1, 'a', 'b', 10]],
      ['duePriorities', statements.duePriorities.source, [1]],
      ['oldestDue', statements.oldestDue.source, [1, 1]],
      ['groupsDue', groups.due.source, [1]],
      ['anyState', groups.anyState.source, []],
      ['groupRunning', groups.running.source, ['g']],
      ['groupState', groups.state.source, ['g']],
      ['setTat', groups.setTat.source, ['g', 1]],
      ['throttle', groups.throttle.source, ['g', 1]],
      ['pausedNames', groups.pausedNames.source, []],
      ['nextKey', groups.nextKey.source, ['g']],
      ['keyFirsts', prepareKeyStatements(db, 2).firsts.source, ['g', 1, 'a', 'b', 8]],
      ['keyIds', prepareKeyStatements(db, 2).ids.source, ['g', 1, 'a', 'b', 10]],
      ['dueKeys', prepareKeyStatements(db, 2).dueKeys.source, [1, 'a', 'b', 10]],
      ['groupTake', groups.take.source, [1, 'w', 2, '[1]']],
      ['byKey', statements.byKey.source, ['k']],
      ['byId', statements.byId.source, [1]],
      ['settle', statements.settle.source, [end]],
      ['succeed', statements.succeed.source, ['{}', 1, 1, 1]],
      ['rescue', statements.rescue.source, [end]],
      ['renew', statements.renew.source, [1, 1, 1]],
      ['progress', statements.progress.source, ['{}', 1, 1]],
      ['expired', statements.expired.source, [1]],
      ['runningOwners', statements.runningOwners.source, []],
      ['runningOf', statements.runningOf.source, ['w']],
      ['list', statements.list.source, [page]],
      ['listFinished', statements.listFinished.source, [{ ...page, state: 'failed' }]],
      ['listQueued', statements.listQueued.source, [page]],
      ['listRunning', statements.listRunning.source, [page]],
      ['listByKey', statements.listByKey.source, [{ ...page, from: 'a', to: 'b', state: null }]],
      ['cancel', statements.cancel.source, [1, 1]],
      ['retry', statements.retry.source, [1, 1]],
      ['maxId', statements.maxId.source, []],
      ['prune', statements.prune.source, [1, 1]],
      ['raiseIdFloor', statements.raiseIdFloor.source, [{ top: 1 }]],
      ['counts', statements.counts.source, []],
    ];
    // Listing the queued or the running tasks newest first sorts that set (admin queries; an
    // index on (state, id) would cost every enqueue a page). Nothing else may sort.
    const maySort = new Set(['listQueued', 'listRunning', 'listByKey']);
    const plans = new Map<string, string>();
    for (const [label, sql, params] of checks) {
      const plan = planOf(db, sql, params);
      plans.set(label, plan);
      assert.doesNotMatch(
        plan,
        /SCAN offload_tasks(?! USING)/,
        `${label} scans the table: ${plan}`,
      );
      if (maySort.has(label)) continue;
      assert.doesNotMatch(plan, /TEMP B-TREE FOR ORDER BY/, `${label} sorts: ${plan}`);
    }
    assert.match(plans.get('claim')!, /offload_tasks_claim \(priority=\? AND run_at<\?\)/);
    assert.match(plans.get('list')!, /INTEGER PRIMARY KEY \(rowid<\?\)/);
    assert.match(plans.get('listFinished')!, /offload_tasks_done \(state=\? AND id<\?\)/);
    assert.match(plans.get('listQueued')!, /offload_tasks_claim/);
    assert.match(plans.get('keyIds')!, /offload_tasks_grouped \(group_key=\?\)/);
    assert.match(plans.get('groupTake')!, /INTEGER PRIMARY KEY \(rowid=\?\)/);
    assert.match(plans.get('nextKey')!, /offload_tasks_grouped \(group_key>\?\)/);
    assert.match(plans.get('keyFirsts')!, /COVERING INDEX offload_tasks_grouped \(group_key=\?/);
    assert.match(plans.get('dueKeys')!, /COVERING INDEX offload_tasks_grouped_due \(run_at<\?\)/);
    assert.match(plans.get('groupsDue')!, /offload_tasks_grouped_due \(run_at<\?\)/);
    assert.match(plans.get('groupRunning')!, /offload_tasks_group_running \(group_key=\?\)/);
    assert.match(plans.get('listRunning')!, /offload_tasks_running/);
    assert.match(plans.get('listByKey')!, /offload_tasks_key \(key>\? AND key<\?\)/);
    assert.match(plans.get('prune')!, /COVERING INDEX offload_tasks_done \(state=\?\)/);
    assert.match(plans.get('expired')!, /offload_tasks_running \(lease_expires_at<\?\)/);
    // Counted from the index alone, in its order: the rows, and their payloads, are never read.
    const counts = plans.get('counts')!;
    for (const index of ['offload_tasks_claim', 'offload_tasks_running', 'offload_tasks_done']) {
      assert.match(
        counts,
        new RegExp(`(SCAN|SEARCH) offload_tasks USING COVERING INDEX ${index}\\b`),
      );
    }
    assert.doesNotMatch(counts, /SCAN offload_tasks(?! USING COVERING INDEX)/, counts);
    db.close();
  });

  it('claims by index seeks per priority, not by walking the tasks due later, even after ANALYZE', async () => {
    const store = await openStore();
    // 200,000 tasks due in a year, over three priorities, in one raw transaction.
    const raw = new Database(store.path);
    raw.exec(`
      WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
      INSERT INTO offload_tasks (name, payload, state, priority, max_attempts, run_at, created_at)
      SELECT 'job', '{}', 'queued', i % 3 - 1, 3, ${T0 + 365 * 24 * HOUR} + i, ${T0} FROM n`);
    // Statistics must not change the plans: every claim query names its index.
    raw.exec('ANALYZE');
    raw.pragma('optimize');
    const statements = prepareStatements(raw);
    const claimPlan = planOf(raw, prepareClaim(raw, 1).source, [
      T0,
      'w',
      T0 + HOUR,
      0,
      T0,
      'job',
      10,
    ]);
    // The tasks to take are chosen from the index alone (it holds their names too).
    assert.match(
      claimPlan,
      /SEARCH offload_tasks USING COVERING INDEX offload_tasks_claim \(priority=\? AND run_at<\?\)/,
    );
    const prioritiesPlan = planOf(raw, statements.duePriorities.source, [T0]);
    assert.match(prioritiesPlan, /COVERING INDEX offload_tasks_claim \(priority<\?\)/);
    assert.match(
      prioritiesPlan,
      /COVERING INDEX offload_tasks_claim \(priority=\? AND run_at<\?\)/,
    );
    for (const plan of [
      claimPlan,
      prioritiesPlan,
      planOf(raw, statements.oldestDue.source, [T0, T0]),
    ]) {
      assert.doesNotMatch(plan, /SCAN offload_tasks/, plan);
      assert.doesNotMatch(plan, /TEMP B-TREE/, plan);
    }
    assert.deepEqual(statements.duePriorities.all(T0), []);
    raw.close();

    await store.registerWorker('w');
    const claim = (limit: number) =>
      store.claim({ owner: 'w', names: ['job'], limit, now: T0, leaseExpiresAt: T0 + HOUR });
    assert.deepEqual(await claim(10), []);
    const due = await store.enqueue([
      newStoredTask({ priority: -1, runAt: T0 - 3 }),
      newStoredTask({ priority: 5, runAt: T0 }),
      newStoredTask({ priority: 0, runAt: T0 - 2 }),
      newStoredTask({ priority: 5, runAt: T0 - 1 }),
      newStoredTask({ name: 'other', priority: 9, runAt: T0 - 9 }),
    ]);
    const [low, highLater, middle, high] = due.map((r) => r.task.id);
    assert.equal((await store.stats(T0)).oldestDue, T0 - 9);
    assert.deepEqual(
      (await claim(3)).map((t) => t.id),
      [high, highLater, middle],
    );
    assert.deepEqual(
      (await claim(3)).map((t) => t.id),
      [low],
    );
    assert.deepEqual(await claim(3), []);
  });
});

function planOf(db: Database.Database, sql: string, params: unknown[]): string {
  return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
    .map((row) => row.detail)
    .join(' | ');
}

/** The first line the child prints, or a rejection when it exits or times out first. */
function firstLine(child: ChildProcessByStdio<null, Readable, Readable>): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`the worker process printed nothing within ${CHILD_TIMEOUT} ms; stderr: ${err}`),
      );
    }, CHILD_TIMEOUT);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const end = out.indexOf('\n');
      if (end >= 0) {
        done();
        resolve(out.slice(0, end));
      }
    };
    const onErr = (chunk: Buffer) => {
      err += chunk.toString();
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`the worker process exited (${code}) before it claimed; stderr: ${err}`));
    };
    const done = () => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stderr.off('data', onErr);
      child.off('exit', onExit);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onErr);
    child.on('exit', onExit);
  });
}

function exited(child: ChildProcessByStdio<null, Readable, Readable>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the worker process did not exit within ${CHILD_TIMEOUT} ms`)),
      CHILD_TIMEOUT,
    );
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
