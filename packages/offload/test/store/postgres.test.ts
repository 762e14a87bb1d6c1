import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { createRuntime, defineTask, memoryStore, type Runtime } from '../../src/index.js';
import { lockClassOf } from '../../src/postgres/options.js';
import { postgresStore, type PostgresStore } from '../../src/postgres/postgres-store.js';
import { OWNER_GRACE } from '../../src/postgres/absent-owners.js';
import { SCHEMA_VERSION } from '../../src/postgres/migrations.js';
import { buildSql } from '../../src/postgres/sql.js';
import type { Rescue } from '../../src/store/store.js';
import { captureLogger, finished, newStoredTask, nextEvent, T0, waitUntil } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const LONG_LEASE = 10 * 60_000;

describe('postgres store', () => {
  const schemas: string[] = [];
  const stores: PostgresStore[] = [];
  const runtimes: Runtime[] = [];
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 4 });

  /** A store on a schema of this test's own (fresh unless `schema` is given), opened. */
  async function openStore(schema?: string): Promise<PostgresStore> {
    if (schema === undefined) schemas.push((schema = uniqueSchema('pg')));
    const store = postgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 3 });
    stores.push(store);
    await store.open();
    return store;
  }

  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.stop()));
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await Promise.all(schemas.splice(0).map(dropSchema));
  });
  after(() => pool.end());

  it('migrates once when many processes start at once, and refuses a newer schema', async () => {
    const schema = uniqueSchema('migrate');
    schemas.push(schema);
    const starting = Array.from({ length: 6 }, () =>
      postgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 1 }),
    );
    stores.push(...starting);
    await Promise.all(starting.map((store) => store.open()));
    const { rows } = await pool.query(
      `SELECT version FROM "${schema}".migrations ORDER BY version`,
    );
    assert.deepEqual(
      rows.map((r) => r.version),
      Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
    );
    await Promise.all(stores.splice(0).map((s) => s.close()));

    await pool.query(`INSERT INTO "${schema}".migrations (version) VALUES ($1)`, [
      SCHEMA_VERSION + 1,
    ]);
    const newer = postgresStore({ connectionString: TEST_DATABASE_URL, schema });
    await assert.rejects(newer.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'STORE_SCHEMA_TOO_NEW');
      assert.match(error.message, new RegExp(schema));
      return true;
    });
  });

  it('refuses a connection string that is not a postgres:// URL, and options it does not know', () => {
    assert.throws(
      () => postgresStore({ connectionString: 'localhost:5432/app' }),
      /postgresStore\.connectionString: must be a postgres:\/\/ URL/,
    );
    assert.throws(
      () => postgresStore({ connectionString: TEST_DATABASE_URL, poolsize: 2 } as never),
      /postgresStore options\.poolsize: is not an option; did you mean "poolSize"/,
    );
    assert.throws(
      () => postgresStore({ connectionString: TEST_DATABASE_URL, connectTimeout: -1 }),
      /postgresStore\.connectTimeout/,
    );
  });

  it('says what to check when the server cannot be reached', async () => {
    // A closed port on loopback: nothing listens on port 1.
    const store = postgresStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      connectTimeout: 2000,
    });
    await assert.rejects(store.open(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'STORE_OPEN_FAILED');
      assert.match(error.message, /Check the connection string, that the server is running/);
      return true;
    });
    await store.close();
  });

  it('rescues the tasks of an owner whose session ended once its lock stayed free for the grace, and leaves a live owner alone', async () => {
    const alive = await openStore();
    const schema = alive.schema;
    const doomed = await openStore(schema);
    await alive.registerWorker('alive');
    await doomed.registerWorker('doomed');
    await alive.enqueue([newStoredTask(), newStoredTask()]);
    const claim = { names: ['job'], limit: 1, now: T0, leaseExpiresAt: T0 + LONG_LEASE };
    const [mine] = await alive.claim({ ...claim, owner: 'alive' });
    const [theirs] = await doomed.claim({ ...claim, owner: 'doomed' });
    assert.deepEqual(await alive.rescue(T0 + 1), [], 'both owners live, no lease expired');

    // The process goes away without unregistering: its session, and so its lock, ends.
    await doomed.close();
    const closedAt = performance.now();
    assert.deepEqual(await alive.rescue(T0 + 2), [], 'a free lock may be an owner reconnecting');
    let rescued: Rescue[] = [];
    await waitUntil(
      'the tasks of the closed owner to be rescued',
      async () => (rescued = await alive.rescue(T0 + 2)).length > 0,
      { timeout: OWNER_GRACE + 5000, interval: 20 },
    );
    assert.ok(performance.now() - closedAt >= OWNER_GRACE, 'not before the grace');
    assert.deepEqual(
      rescued.map((r) => [r.task.id, r.task.state, r.owner]),
      [[theirs!.id, 'queued', 'doomed']],
    );
    assert.match(rescued[0]!.task.errors[0]!.message, /interrupted: its process \(doomed\)/);
    assert.equal((await alive.get(mine!.id))?.state, 'running');
  });

  it('refuses an owner name that another live process holds', async () => {
    const first = await openStore();
    const second = await openStore(first.schema);
    await first.registerWorker('same-name');
    await assert.rejects(second.registerWorker('same-name'), /in use by another live process/);
    await first.unregisterWorker('same-name');
    await second.registerWorker('same-name');
  });

  it('runs rescue and pruning on one process at a time', async () => {
    const store = await openStore();
    await store.registerWorker('w');
    await store.enqueue([newStoredTask()]);
    await store.claim({ owner: 'w', names: ['job'], limit: 1, now: T0, leaseExpiresAt: T0 + 10 });
    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1, 1)', [lockClassOf(store.schema)]);
      assert.deepEqual(await store.rescue(T0 + 100), [], 'another process is at it');
      await other.query('COMMIT');
    } finally {
      other.release();
    }
    assert.equal((await store.rescue(T0 + 100)).length, 1);
  });

  it('tells watchers when any process adds tasks, at commit', async () => {
    const watcher = await openStore();
    const writer = await openStore(watcher.schema);
    let calls = 0;
    let nextCall: () => void = () => undefined;
    const called = () => new Promise<void>((resolve) => (nextCall = resolve));
    await watcher.watch(() => {
      calls += 1;
      nextCall();
    });
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await writer.enqueue([newStoredTask()], client);
      // A marker notification sent after the uncommitted insert: notifications arrive in order, so
      // once the marker is heard, one from the insert would have been heard before it.
      const marker = called();
      await pool.query(`NOTIFY "offload_${watcher.schema}"`);
      await marker;
      assert.equal(calls, 1, 'nothing is told before the commit: only the marker was heard');
      const committed = called();
      await client.query('COMMIT');
      await committed;
    } finally {
      client.release();
    }
    assert.equal(calls, 2);
  });

  it('knows ids only in their canonical bigint form', async () => {
    const store = await openStore();
    const [result] = await store.enqueue([newStoredTask()]);
    const task = result!.task;
    for (const id of ['0', `0${task.id}`, '9223372036854775808', '99999999999999999999', '1e3']) {
      assert.equal(await store.get(id), null, id);
      assert.equal(await store.cancel(id, T0), null, id);
    }
    await assert.rejects(store.list({ limit: 1, cursor: '9223372036854775808' }), {
      code: 'INVALID_CURSOR',
    });
  });

  it('counts tasks by state and name from indexes that hold every column the count reads', async () => {
    const store = await openStore();
    const tasks = `"${store.schema}".tasks`;
    await pool.query(
      `INSERT INTO ${tasks} (name, payload, state, max_attempts, run_at, created_at, finished_at,
         group_key, lease_owner, lease_expires_at)
       SELECT 'job' || (i % 4), repeat('x', 200), s, 3, i, i,
         CASE WHEN s IN ('succeeded', 'failed', 'canceled') THEN i END,
         CASE WHEN s = 'queued' AND i % 10 = 1 THEN 'g' END,
         CASE WHEN s = 'running' THEN 'gone' END, CASE WHEN s = 'running' THEN i END
       FROM (SELECT i, (ARRAY['queued', 'running', 'succeeded', 'succeeded', 'succeeded',
                              'succeeded', 'failed', 'canceled'])[i % 8 + 1] AS s
             FROM generate_series(1, 40000) AS i) AS rows`,
    );
    await pool.query(`VACUUM ANALYZE ${tasks}`);
    // The plan of the statement the store runs: with rows this small, the planner alone would
    // find a scan of the table as cheap.
    const { counts: select, countsFromIndexes } = buildSql(store.schema);
    const results = (await pool.query(
      countsFromIndexes.replace(select, `EXPLAIN ${select}`),
    )) as unknown as pg.QueryResult<{ 'QUERY PLAN': string }>[];
    const plan = results.at(-1)!.rows.map((r) => r['QUERY PLAN']);
    const scans = plan.filter((line) => line.includes(' Scan '));
    assert.equal(scans.length, 4, plan.join('\n'));
    for (const scan of scans) assert.match(scan, /Index Only Scan using tasks_/, plan.join('\n'));

    const { counts } = await store.stats(T0);
    const { rows: expected } = await pool.query<{ name: string; state: string; count: number }>(
      `SELECT name, state, count(*)::integer AS count FROM ${tasks} GROUP BY name, state`,
    );
    const key = (c: { name: string; state: string }) => `${c.state} ${c.name}`;
    assert.deepEqual(
      new Map(counts.map((c) => [key(c), c.count])),
      new Map(expected.map((c) => [key(c), c.count])),
    );
  });

  it('reads rows written by hand with a bad payload, errors or result without crashing', async () => {
    const store = await openStore();
    await pool.query(
      `INSERT INTO "${store.schema}".tasks (name, payload, state, max_attempts, run_at, created_at, errors, result)
       VALUES ('job', 'not json', 'queued', 3, 0, 0, '{"not":"an array"}', 'not json either')`,
    );
    await store.registerWorker('w');
    const [claimed] = await store.claim({
      owner: 'w',
      names: ['job'],
      limit: 1,
      now: T0,
      leaseExpiresAt: T0 + LONG_LEASE,
    });
    assert.match(claimed!.payloadError ?? '', /not valid JSON/);
    assert.deepEqual(claimed!.errors, []);
    assert.equal(claimed!.result, 'not json either');
  });

  it('stores an error whose text jsonb refuses, and the outcomes settled with it', async () => {
    const store = await openStore();
    // A NUL, a lone surrogate, and a pair the 4,000-character cut of a message splits.
    const message = `bad input: x\u0000y \uD800 ${'a'.repeat(3982)}😀 and more`;
    const bad = defineTask({
      name: 'bad',
      maxAttempts: 1,
      run: () => Promise.reject(new Error(message)),
    });
    const ok = defineTask({ name: 'ok', run: () => Promise.resolve('done') });
    const runtime = createRuntime({ store, tasks: [bad, ok], logger: captureLogger() });
    runtimes.push(runtime);
    const [failing, passing] = await Promise.all([
      runtime.enqueue(bad, {}),
      runtime.enqueue(ok, {}),
    ]);
    await runtime.start();
    const failed = await finished(runtime, failing.id);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.errors[0]!.message.length, 4000);
    assert.ok(
      failed.errors[0]!.message.startsWith('bad input: x\uFFFDy \uFFFD a'),
      'NUL and the lone surrogate are replaced',
    );
    assert.ok(failed.errors[0]!.message.endsWith('a\uFFFD'), 'the split pair is replaced');
    assert.equal((await finished(runtime, passing.id)).state, 'succeeded');
  });

  it('refuses a key it cannot hold without failing the enqueues grouped with it', async () => {
    const runtime = createRuntime({ store: await openStore(), logger: captureLogger() });
    runtimes.push(runtime);
    const emails = ['ada@example.com', 'bob@example.com', 'eve\u0000@example.com'];
    const outcomes = await Promise.allSettled(
      emails.map((email) => runtime.enqueue('welcome', { email }, { key: `welcome:${email}` })),
    );
    assert.deepEqual(
      outcomes.map((outcome) => outcome.status),
      ['fulfilled', 'fulfilled', 'rejected'],
    );
    assert.match(String((outcomes[2] as PromiseRejectedResult).reason), /enqueue options\.key/);
    assert.equal((await runtime.list()).tasks.length, 2);
  });

  describe('enqueue in the caller’s transaction', () => {
    const receipt = defineTask<{ order: number }>({
      name: 'send-receipt',
      run: ({ order }) => ({ sent: order }),
    });

    async function runtimeOnPostgres(): Promise<Runtime> {
      const store = await openStore();
      const runtime = createRuntime({
        store,
        tasks: [receipt],
        logger: captureLogger(),
        shutdownGrace: 0,
        pollInterval: 60_000, // only LISTEN/NOTIFY can wake it in time
      });
      runtimes.push(runtime);
      await runtime.start();
      return runtime;
    }

    it('runs the task once the caller commits, woken by NOTIFY', async () => {
      const runtime = await runtimeOnPostgres();
      const client = await pool.connect();
      let id: string;
      try {
        await client.query('BEGIN');
        ({ id } = await runtime.enqueue(receipt, { order: 42 }, { transaction: client }));
        const outside = await runtime.get(id);
        assert.equal(outside, null, 'not visible before the commit');
        const succeeded = nextEvent(runtime, 'task:success', 5000);
        await client.query('COMMIT');
        assert.equal((await succeeded).task.id, id);
      } finally {
        client.release();
      }
      const task = await runtime.get(id);
      assert.deepEqual([task?.state, task?.result], ['succeeded', { sent: 42 }]);
    });

    it('never stores nor runs the task when the caller rolls back', async () => {
      const runtime = await runtimeOnPostgres();
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tasks = await runtime.enqueueMany(
          [1, 2].map((order) => ({ task: receipt, payload: { order } })),
          { transaction: client },
        );
        assert.equal(tasks.length, 2);
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      await runtime.drain();
      assert.deepEqual((await runtime.list()).tasks, []);
    });

    it('refuses a transaction on a store that cannot share one, and a value that is no client', async () => {
      const runtime = await runtimeOnPostgres();
      await assert.rejects(runtime.enqueue(receipt, { order: 1 }, { transaction: {} as never }), {
        code: 'INVALID_OPTION',
      });
      const onMemory = createRuntime({
        store: memoryStore(),
        tasks: [receipt],
        logger: captureLogger(),
      });
      runtimes.push(onMemory);
      const client = await pool.connect();
      try {
        await assert.rejects(
          onMemory.enqueue(receipt, { order: 1 }, { transaction: client }),
          /is for the postgres store/,
        );
      } finally {
        client.release();
      }
    });
  });
});
