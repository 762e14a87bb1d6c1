import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { createRuntime, defineTask, type Runtime, type TaskDefinition } from '../../src/index.js';
import { AbsentOwners } from '../../src/postgres/absent-owners.js';
import { lockClassOf } from '../../src/postgres/options.js';
import { postgresStore, type PostgresStore } from '../../src/postgres/postgres-store.js';
import { TcpProxy } from '../fixtures/tcp-proxy.js';
import { barrier, captureLogger, type LogEntry, waitUntil } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const LONG_LEASE = 10 * 60_000;
const LOST = 'lost the PostgreSQL liveness connection';
const BACK = 'PostgreSQL liveness connection is back';

/**
 * A process whose liveness connection (the one holding its owner's advisory lock) breaks while
 * its tasks run: neither it nor another process may hand those tasks back, and every task runs
 * exactly once.
 */
describe('postgres: a live process keeps its running tasks when its liveness connection breaks', () => {
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 3 });
  const cleanups: (() => Promise<unknown>)[] = [];
  let schema: string;

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await dropSchema(schema);
  });
  after(() => pool.end());

  /** A connection string to the test database through `proxy`, or straight to it. */
  function urlThrough(proxy?: TcpProxy): string {
    if (!proxy) return TEST_DATABASE_URL;
    const url = new URL(TEST_DATABASE_URL);
    url.host = `127.0.0.1:${proxy.port}`;
    return url.toString();
  }

  async function startProxy(): Promise<TcpProxy> {
    const proxy = await TcpProxy.start(Number(new URL(TEST_DATABASE_URL).port || 5432));
    cleanups.push(() => proxy.close());
    return proxy;
  }

  /** A runtime of its own store on this test's schema; stopped after the test. */
  async function startRuntime(options: {
    owner: string;
    url?: string;
    tasks?: TaskDefinition<{ n: number }>[];
    concurrency?: number;
    entries?: LogEntry[];
  }): Promise<{ runtime: Runtime; store: PostgresStore; logs: LogEntry[] }> {
    const logs = options.entries ?? [];
    const store = postgresStore({
      connectionString: options.url ?? TEST_DATABASE_URL,
      schema,
      poolSize: 4,
      connectTimeout: 2000,
      logger: captureLogger({ owner: options.owner }, logs),
    });
    const runtime = createRuntime({
      store,
      tasks: options.tasks ?? [],
      owner: options.owner,
      concurrency: options.concurrency ?? 20,
      // Far beyond the test's time: only the liveness lock could make anyone take these tasks.
      leaseDuration: LONG_LEASE,
      rescueInterval: 50,
      shutdownGrace: 0,
      logger: captureLogger({ owner: options.owner }),
    });
    await runtime.start();
    cleanups.push(() => runtime.stop());
    return { runtime, store, logs };
  }

  /** A bare store on the schema, registered as `owner`, that the test drives by hand. */
  async function bystander(owner: string): Promise<PostgresStore> {
    const store = postgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 2 });
    cleanups.push(() => store.close());
    await store.open();
    await store.registerWorker(owner);
    return store;
  }

  /** The backend that holds `owner`'s liveness lock, or null when none does. */
  async function lockHolder(owner: string): Promise<number | null> {
    const { rows } = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND objsubid = 2
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND classid = ($1::bigint & 4294967295)::oid
         AND objid = (hashtext($2)::bigint & 4294967295)::oid`,
      [lockClassOf(schema), owner],
    );
    return rows[0]?.pid ?? null;
  }

  /** Tasks that count their runs, and wait for `release` when asked to hold. */
  function countedTask(work: (payload: { n: number }, signal: AbortSignal) => Promise<void>) {
    const runs = new Map<string, number>();
    const task = defineTask<{ n: number }>({
      name: 'counted',
      run: async (payload, ctx) => {
        runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
        await work(payload, ctx.signal);
      },
    });
    return { task, runs };
  }

  const count = (logs: LogEntry[], msg: string) =>
    logs.filter((entry) => entry.msg?.startsWith(msg)).length;

  async function whenLogged(logs: LogEntry[], msg: string, times = 1, timeout = 10_000) {
    await waitUntil(`"${msg}" logged ${times} time(s)`, async () => count(logs, msg) >= times, {
      timeout,
      interval: 10,
    });
  }

  async function taskStates(): Promise<
    { id: string; state: string; attempts: number; errors: number }[]
  > {
    const { rows } = await pool.query<{
      id: string;
      state: string;
      attempts: number;
      errors: number;
    }>(
      `SELECT id::text AS id, state, attempts, jsonb_array_length(errors) AS errors
       FROM "${schema}".tasks`,
    );
    return rows;
  }

  it('is not handed back by itself or by others when the server ends its liveness session', async () => {
    schema = uniqueSchema('liveness');
    const release = barrier();
    const { task, runs } = countedTask(() => release.promise);
    const holder = await startRuntime({ owner: 'holder', tasks: [task] });
    cleanups.push(async () => release.open());
    const other = await bystander('other');
    const rescues: unknown[] = [];
    holder.runtime.on('task:rescue', (event) => rescues.push(event));
    const ids = (
      await holder.runtime.enqueueMany(
        Array.from({ length: 10 }, (_, n) => ({ task: 'counted', payload: { n } })),
      )
    ).map((t) => t.id);
    await waitUntil('every task to run', async () => runs.size === ids.length);

    const pid = await lockHolder('holder');
    assert.ok(pid !== null, 'the live owner holds its lock');
    await pool.query('SELECT pg_terminate_backend($1)', [pid]);
    await whenLogged(holder.logs, LOST);
    // Rescue passes while the lock may still be free: by this process, and by another one.
    assert.deepEqual(await holder.store.rescue(Date.now()), [], 'its own tasks are alive');
    assert.deepEqual(await other.rescue(Date.now()), [], 'the owner may be reconnecting');

    await whenLogged(holder.logs, BACK);
    const again = await lockHolder('holder');
    assert.ok(again !== null && again !== pid, 'the lock is held again, on a new connection');
    assert.deepEqual(await other.rescue(Date.now()), []);

    release.open();
    await waitUntil('every task to succeed', async () =>
      (await taskStates()).every((t) => t.state === 'succeeded'),
    );
    assert.deepEqual(rescues, []);
    assert.deepEqual(
      [...runs.values()],
      ids.map(() => 1),
      'each task ran exactly once',
    );
    assert.deepEqual(
      (await taskStates()).map(({ state, attempts, errors }) => ({ state, attempts, errors })),
      ids.map(() => ({ state: 'succeeded', attempts: 1, errors: 0 })),
    );
  });

  it('runs every task exactly once through repeated outages in which the server refuses connections', async () => {
    schema = uniqueSchema('outages');
    const proxy = await startProxy();
    const TASKS = 400;
    const OUTAGES = 2;
    // An outage lasts while the bystander's rescue passes (every 50 ms) fail this many times.
    const FAILED_PASSES = 50;
    const { task, runs } = countedTask(
      (_payload, signal) =>
        new Promise((resolve) => {
          const timer = setTimeout(resolve, 30);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve()));
        }),
    );
    const worker = await startRuntime({ owner: 'worker', url: urlThrough(proxy), tasks: [task] });
    const watcher = await startRuntime({ owner: 'watcher', url: urlThrough(proxy) });
    const rescues: unknown[] = [];
    const failedPasses: number[] = [];
    for (const { runtime } of [worker, watcher]) {
      runtime.on('task:rescue', (event) => rescues.push(event));
    }
    watcher.runtime.on('runtime:error', ({ during }) => {
      if (during.startsWith('rescuing')) failedPasses.push(Date.now());
    });
    await worker.runtime.enqueueMany(
      Array.from({ length: TASKS }, (_, n) => ({ task: 'counted', payload: { n } })),
    );

    for (let outage = 1; outage <= OUTAGES; outage++) {
      await waitUntil('tasks to run before the outage', async () => runs.size >= outage * 60, {
        interval: 10,
      });
      const failedBefore = failedPasses.length;
      proxy.cut();
      await waitUntil(
        `${FAILED_PASSES} failed rescue passes`,
        async () => failedPasses.length - failedBefore >= FAILED_PASSES,
        { interval: 10 },
      );
      proxy.restore();
      await whenLogged(worker.logs, BACK, outage);
      await whenLogged(watcher.logs, BACK, outage);
      const outageMs = failedPasses.at(-1)! - failedPasses[failedBefore]!;
      assert.ok(outageMs >= 2000, `outage ${outage} lasted ${outageMs} ms`);
    }

    // A claim that the server committed while its answer was lost in an outage leaves its tasks
    // running with nobody running them, until their lease expires (far beyond this test).
    const lostClaim = (t: { id: string; state: string }) =>
      t.state === 'running' && !runs.has(t.id);
    await waitUntil(
      'every task to finish, or to wait for the lease of a claim lost in an outage',
      async () => (await taskStates()).every((t) => t.state === 'succeeded' || lostClaim(t)),
      { timeout: 20_000 },
    );
    const twice = [...runs.values()].filter((n) => n > 1).length;
    assert.equal(twice, 0, `${twice} of ${TASKS} tasks ran more than once`);
    assert.equal(rescues.length, 0, 'no task was handed back');
    const states = await taskStates();
    const lost = states.filter(lostClaim).length;
    assert.equal(runs.size + lost, TASKS);
    assert.equal(
      states.filter((t) => t.state === 'succeeded' && t.attempts === 1).length,
      runs.size,
      'every task that ran succeeded at its first attempt',
    );
  });

  it('takes its lock back once another session that held it lets go, and keeps its tasks meanwhile', async () => {
    schema = uniqueSchema('relock');
    const proxy = await startProxy();
    const release = barrier();
    const { task, runs } = countedTask(() => release.promise);
    const holder = await startRuntime({ owner: 'holder', url: urlThrough(proxy), tasks: [task] });
    cleanups.push(async () => release.open());
    const other = await bystander('other');
    const ids = (
      await holder.runtime.enqueueMany(
        Array.from({ length: 5 }, (_, n) => ({ task: 'counted', payload: { n } })),
      )
    ).map((t) => t.id);
    await waitUntil('every task to run', async () => runs.size === ids.length);

    proxy.cut();
    await whenLogged(holder.logs, LOST);
    await waitUntil('the lock to be free', async () => (await lockHolder('holder')) === null);
    const squatter = await pool.connect();
    try {
      const { rows } = await squatter.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
        [lockClassOf(schema), 'holder'],
      );
      assert.equal(rows[0]!.locked, true);
      proxy.restore();
      await whenLogged(holder.logs, BACK);
      assert.ok(
        holder.logs.some((e) => e.level === 'error' && /held by another session/.test(e.msg ?? '')),
      );
      assert.deepEqual(await other.rescue(Date.now()), [], 'the lock is held: owner alive');
      await squatter.query('SELECT pg_advisory_unlock($1, hashtext($2))', [
        lockClassOf(schema),
        'holder',
      ]);
    } finally {
      squatter.release();
    }
    assert.deepEqual(await other.rescue(Date.now()), [], 'the owner may be taking it back');
    await whenLogged(holder.logs, 'took back the liveness lock');
    const { rows } = await pool.query<{ application_name: string }>(
      'SELECT application_name FROM pg_stat_activity WHERE pid = $1',
      [await lockHolder('holder')],
    );
    assert.equal(rows[0]?.application_name, 'offload-liveness');

    release.open();
    await waitUntil('every task to succeed', async () =>
      (await taskStates()).every((t) => t.state === 'succeeded'),
    );
    assert.deepEqual(
      [...runs.values()],
      ids.map(() => 1),
      'each task ran exactly once',
    );
  });
});

describe('postgres: when an owner whose lock is free counts as gone', () => {
  function looks(grace = 1000) {
    let now = 0;
    const absent = new AbsentOwners(grace, () => now);
    return { absent, at: (ms: number) => void (now = ms) };
  }

  it('once its lock was free at every look for the grace', () => {
    const { absent, at } = looks();
    assert.deepEqual(absent.observe(['a', 'b'], 1), [], 'a first look: maybe reconnecting');
    at(999);
    assert.deepEqual(absent.observe(['a', 'b'], 1), []);
    at(1000);
    assert.deepEqual(absent.observe(['a', 'b'], 1), ['a', 'b']);
  });

  it('starts again when the lock was seen held, when this process lost its own session, or after a missed look', () => {
    const { absent, at } = looks();
    absent.observe(['a', 'b', 'c'], 1);
    at(500);
    assert.deepEqual(absent.observe(['b', 'c'], 1), [], 'a holds its lock again');
    at(1000);
    assert.deepEqual(absent.observe(['a', 'b', 'c'], 1), ['b', 'c']);
    assert.deepEqual(absent.observe(['a', 'b', 'c'], 2), [], 'a new session of this process');
    at(2000);
    absent.forget();
    assert.deepEqual(absent.observe(['a', 'b', 'c'], 2), []);
    at(3000);
    assert.deepEqual(absent.observe(['a', 'b', 'c'], 2), ['a', 'b', 'c']);
  });
});
