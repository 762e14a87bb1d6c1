import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { createRuntime, SECOND, type GroupOptions, type Runtime } from '../../src/index.js';
import { postgresStore } from '../../src/postgres/index.js';
import { captureLogger, FIXTURES, waitUntil } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const WORKERS = 3;
/** Upper bound of a drain: a test that cannot finish fails instead of hanging. */
const DEADLINE = 120_000;

/**
 * Group limits across processes: three worker processes on one schema, and this process
 * enqueueing. Each run records its start and end (database clock) in a `runs` table.
 */
describe('postgres: group limits across processes', () => {
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

  async function setUp(taskMs: number): Promise<void> {
    schema = uniqueSchema('limits');
    api = createRuntime({
      store: postgresStore({ connectionString: TEST_DATABASE_URL, schema }),
      logger: captureLogger(),
    });
    await api.list(); // opens the store: creates the schema
    await pool.query(
      `CREATE TABLE "${schema}".runs (
         id serial PRIMARY KEY, task_id bigint NOT NULL, owner text NOT NULL,
         started_at timestamptz NOT NULL, ended_at timestamptz)`,
    );
    workers = await Promise.all(
      Array.from({ length: WORKERS }, (_, i) => startWorker(`worker-${i}`, taskMs)),
    );
  }

  async function startWorker(owner: string, taskMs: number): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(FIXTURES, 'pg-limits-worker.ts')],
      {
        env: {
          ...process.env,
          DATABASE_URL: TEST_DATABASE_URL,
          OFFLOAD_SCHEMA: schema,
          OFFLOAD_OWNER: owner,
          TASK_MS: String(taskMs),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = (await Promise.race([
      once(child.stdout!, 'data'),
      once(child, 'exit').then(() => {
        throw new Error(`${owner} exited before it was ready`);
      }),
    ])) as [Buffer];
    assert.equal(line.toString().trim(), 'ready');
    return child;
  }

  async function enqueue(count: number, group: GroupOptions | undefined): Promise<void> {
    for (let i = 0; i < count; i += 500) {
      await api!.enqueueMany(
        Array.from({ length: Math.min(500, count - i) }, () => ({
          task: 'limited',
          payload: {},
          options: group && { group },
        })),
      );
    }
  }

  async function succeeded(): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${schema}".tasks WHERE state = 'succeeded'`,
    );
    return rows[0]!.n;
  }

  /** Per group key (or `-` for none), the most runs at once, from their recorded intervals. */
  async function mostAtOnce(): Promise<Record<string, number>> {
    const { rows } = await pool.query<{ key: string; most: number }>(
      `WITH events AS (
         SELECT coalesce(t.group_key, '-') AS key, r.started_at AS at, 1 AS change
         FROM "${schema}".runs r JOIN "${schema}".tasks t ON t.id = r.task_id
         UNION ALL
         SELECT coalesce(t.group_key, '-'), r.ended_at, -1
         FROM "${schema}".runs r JOIN "${schema}".tasks t ON t.id = r.task_id),
       running AS (
         SELECT key, sum(change) OVER (PARTITION BY key ORDER BY at, change) AS n FROM events)
       SELECT key, max(n)::int AS most FROM running GROUP BY key ORDER BY key`,
    );
    return Object.fromEntries(rows.map((row) => [row.key, row.most]));
  }

  it('never runs more tasks of a key at once than its concurrency, across three processes', async () => {
    await setUp(20);
    const limits = { 'smtp:one': 1, 'smtp:three': 3, 'tenant:5': 5 };
    for (const [key, concurrency] of Object.entries(limits)) {
      await enqueue(60, { key, concurrency });
    }
    await enqueue(300, undefined);
    const total = 60 * 3 + 300;
    await waitUntil('every task to succeed', async () => (await succeeded()) === total, {
      timeout: DEADLINE,
    });
    const most = await mostAtOnce();
    for (const [key, concurrency] of Object.entries(limits)) {
      assert.ok(most[key]! <= concurrency, `${key} ran ${most[key]} at once, limit ${concurrency}`);
      assert.ok(most[key]! >= 1);
    }
    assert.ok(most['-']! > 5, `tasks without a group ran side by side (${most['-']} at once)`);
    const { rows } = await pool.query<{ owners: number }>(
      `SELECT count(DISTINCT owner)::int AS owners FROM "${schema}".runs`,
    );
    assert.equal(rows[0]!.owners, WORKERS, 'every worker took a share');
    console.log(`# most at once per key: ${JSON.stringify(most)}`);
  });

  it('starts the tasks of a key at its rate, within 10% over 30 s, across three processes', async () => {
    await setUp(0);
    const rates = { 'api:fast': 20, 'api:slow': 5 };
    for (const [key, max] of Object.entries(rates)) {
      await enqueue(max * 40, { key, rate: { max, period: SECOND } });
    }
    const window = 30;
    await waitUntil(
      `${window} s of starts`,
      async () => {
        const { rows } = await pool.query<{ elapsed: number }>(
          `SELECT extract(epoch FROM clock_timestamp() - min(started_at))::float AS elapsed
           FROM "${schema}".runs`,
        );
        return (rows[0]!.elapsed ?? 0) > window + 1;
      },
      { timeout: DEADLINE, interval: 500 },
    );
    for (const [key, max] of Object.entries(rates)) {
      // Starts after the first one, over the window: the first burst (max at once) is left out.
      const { rows } = await pool.query<{ starts: number }>(
        `WITH mine AS (
           SELECT r.started_at FROM "${schema}".runs r
           JOIN "${schema}".tasks t ON t.id = r.task_id WHERE t.group_key = $1),
         origin AS (SELECT min(started_at) + interval '1 second' AS at FROM mine)
         SELECT count(*)::int AS starts FROM mine, origin
         WHERE started_at >= origin.at AND started_at < origin.at + make_interval(secs => $2)`,
        [key, window],
      );
      const rate = rows[0]!.starts / window;
      console.log(`# ${key}: ${rate.toFixed(2)} starts/s, limit ${max}`);
      assert.ok(
        Math.abs(rate - max) <= max * 0.1,
        `${key} started ${rate.toFixed(2)} tasks/s, limit ${max}/s`,
      );
    }
  });
});
