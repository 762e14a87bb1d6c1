import { join } from 'node:path';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { createRuntime, type Runtime } from '../../src/index.js';
import { postgresStore } from '../../src/postgres/index.js';
import { PREFETCH_FACTOR } from '../../src/runtime/prefetch.js';
import { captureLogger, FIXTURES, waitUntil } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const TASKS = 20_000;
const WORKERS = 3;
const CONCURRENCY = 20;
/** Upper bound of the whole drain: a test that cannot finish fails instead of hanging. */
const DEADLINE = 90_000;

/**
 * Several processes on one database: three worker processes (`offload worker`'s role) and this
 * process enqueueing as an API process would. Each task writes its id in a ledger when it runs.
 */
describe('postgres: several processes on one database', () => {
  const pool = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2 });
  let schema: string;
  let workers: ChildProcess[] = [];
  let api: Runtime | undefined;

  afterEach(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exitCode ?? w.signalCode ?? once(w, 'exit')));
    workers = [];
    await api?.stop();
    await dropSchema(schema);
  });
  after(() => pool.end());

  async function setUp(): Promise<void> {
    schema = uniqueSchema('cluster');
    api = createRuntime({
      store: postgresStore({ connectionString: TEST_DATABASE_URL, schema }),
      logger: captureLogger(),
    });
    await api.list(); // opens the store: creates the schema
    await pool.query(
      `CREATE TABLE "${schema}".ledger (task_id bigint NOT NULL, owner text NOT NULL)`,
    );
    workers = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => startWorker(`worker-${i}`)),
    );
  }

  async function startWorker(owner: string): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'pg-worker.ts')], {
      env: {
        ...process.env,
        DATABASE_URL: TEST_DATABASE_URL,
        OFFLOAD_SCHEMA: schema,
        OFFLOAD_OWNER: owner,
        CONCURRENCY: String(CONCURRENCY),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await Promise.race([
      once(child.stdout!, 'data'),
      once(child, 'exit').then(() => {
        throw new Error(`${owner} exited before it was ready`);
      }),
    ])) as [Buffer];
    assert.equal(line.toString().trim(), 'ready');
    return child;
  }

  async function enqueueAll(): Promise<void> {
    for (let i = 0; i < TASKS; i += 1000) {
      await api!.enqueueMany(
        Array.from({ length: 1000 }, (_, j) => ({ task: 'ledger', payload: { i: i + j } })),
      );
    }
  }

  async function ledgerCounts(): Promise<{ runs: number; distinct: number }> {
    const { rows } = await pool.query<{ runs: number; distinct: number }>(
      `SELECT count(*)::int AS runs, count(DISTINCT task_id)::int AS distinct FROM "${schema}".ledger`,
    );
    return rows[0]!;
  }

  async function succeeded(): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE state = 'succeeded'`,
    );
    return rows[0]!.n;
  }

  it(`runs each of ${TASKS} tasks exactly once while no process dies`, async () => {
    await setUp();
    await enqueueAll();
    await waitUntil('every task to succeed', async () => (await succeeded()) === TASKS, {
      timeout: DEADLINE,
    });
    const { runs, distinct } = await ledgerCounts();
    assert.deepEqual({ runs, distinct }, { runs: TASKS, distinct: TASKS });
    const { rows } = await pool.query<{ owner: string }>(
      `SELECT DISTINCT owner FROM "${schema}".ledger ORDER BY owner`,
    );
    assert.equal(rows.length, WORKERS, 'every worker took a share');
    // A graceful stop on SIGTERM: exit code 0.
    const exits = workers.map((w) => once(w, 'exit'));
    for (const worker of workers) worker.kill('SIGTERM');
    assert.deepEqual(
      (await Promise.all(exits)).map(([code]) => code),
      workers.map(() => 0),
    );
  });

  it('still runs every task when a worker is SIGKILLed mid-run; duplicates stay within what it held', async () => {
    await setUp();
    const enqueued = enqueueAll();
    await waitUntil(
      'a quarter of the tasks to run',
      async () => (await ledgerCounts()).distinct >= TASKS / 4,
      { timeout: DEADLINE },
    );
    const killed = workers[0]!;
    killed.kill('SIGKILL');
    await once(killed, 'exit');
    const killedAt = Date.now();
    await enqueued;
    await waitUntil('every task to succeed', async () => (await succeeded()) === TASKS, {
      timeout: DEADLINE,
    });
    const drainedAfterKill = Date.now() - killedAt;
    const { runs, distinct } = await ledgerCounts();
    assert.equal(distinct, TASKS, 'every task ran: none lost');
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".tasks
       WHERE errors @> '[{"name":"TaskInterruptedError"}]'`,
    );
    const rescued = rows[0]!.n;
    const duplicates = runs - distinct;
    assert.ok(rescued >= 1, 'the killed worker held tasks, and they were rescued');
    // Its slots, the tasks it claimed ahead of a slot, and as many results not yet stored.
    const held = CONCURRENCY * (1 + PREFETCH_FACTOR);
    assert.ok(
      rescued <= 2 * held,
      `it held at most its slots, the tasks claimed ahead and unsettled results: ${rescued}`,
    );
    assert.ok(duplicates <= rescued, `${duplicates} duplicates, ${rescued} tasks it held`);
    console.log(
      `# killed worker-0 mid-run: ${rescued} tasks rescued, ${duplicates} ran twice, drained ${drainedAfterKill} ms after the kill (leases were 10 min)`,
    );
  });
});
