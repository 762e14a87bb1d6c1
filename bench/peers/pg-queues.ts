/**
 * graphile-worker and pg-boss as peers of bench/pg-drain.ts: each stores `run.n` no-op jobs in bulk
 * (`addJobs`, `insert`, in chunks of `run.chunk`), then works them at `run.concurrency`, timed until
 * every one is done in the database (their completions may be batched, so the database is polled
 * once the handlers ran `run.n` times). A fresh schema each, dropped after.
 */
import pg from 'pg';
import { BENCH_DATABASE_URL, counter, dropSchema, rate, settle, uniqueSchema } from '../lib.js';
import type { Rates } from './sidequest.js';

export type { Rates };

/** What one run drains. */
export interface DrainRun {
  n: number;
  chunk: number;
  concurrency: number;
  timeoutMs: number;
}

/** pg-boss 10 has no `localConcurrency`: this many `work()` calls make up the concurrency. */
export const PGBOSS_WORKERS = 10;
/** Its docs suggest concurrentJobs + 2, but the server allows 100 connections in all. */
export const GRAPHILE_POOL = 20;
/** graphile-worker's batching options, from its performance page. */
export const GRAPHILE_LOCAL_QUEUE = 500;

/**
 * Where every contender's run ends: once its handlers ran `n` times, this polls the database, on
 * a connection of its own opened before the timing, until `sql` counts all `n` done. Each system is
 * so timed to the same point, every task marked done in the database, by the same means.
 */
export class DoneCount {
  private constructor(
    private readonly client: pg.Client,
    private readonly sql: string,
  ) {}

  /** `sql` returns one row with an integer column `done`. */
  static async open(sql: string): Promise<DoneCount> {
    const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
    await client.connect();
    return new DoneCount(client, sql);
  }

  async until(expected: number, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const { rows } = await this.client.query<{ done: number }>(this.sql);
      const seen = rows[0]!.done;
      if (seen === expected) return;
      if (performance.now() > deadline) throw new Error(`${what}: ${seen} of ${expected} done`);
      await settle(2);
    }
  }

  close(): Promise<void> {
    return this.client.end();
  }
}

/** `run.n` items made by `make`, in chunks of `run.chunk`. */
export function chunks<T>(run: DrainRun, make: (i: number) => T): T[][] {
  const all: T[][] = [];
  for (let from = 0; from < run.n; from += run.chunk) {
    const chunk: T[] = [];
    for (let i = from; i < Math.min(run.n, from + run.chunk); i++) chunk.push(make(i));
    all.push(chunk);
  }
  return all;
}

export async function graphileRun(run: DrainRun, batched: boolean): Promise<Rates> {
  const { Logger, makeWorkerUtils, run: runWorker } = await import('graphile-worker');
  const schema = uniqueSchema(batched ? 'graphile_batched' : 'graphile');
  const logger = new Logger(() => (level, message) => {
    if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
  });
  const worker = {
    connectionString: BENCH_DATABASE_URL,
    schema,
    concurrentJobs: run.concurrency,
    maxPoolSize: GRAPHILE_POOL,
    ...(batched
      ? {
          localQueue: { size: GRAPHILE_LOCAL_QUEUE },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
          useNodeTime: true,
        }
      : {}),
  };
  const utils = await makeWorkerUtils({ preset: { worker }, logger });
  let runner: Awaited<ReturnType<typeof runWorker>> | undefined;
  let done: DoneCount | undefined;
  try {
    await utils.migrate(); // outside the timing
    done = await DoneCount.open(
      `SELECT ${run.n} - count(*)::integer AS done FROM "${schema}"._private_jobs`,
    );
    const handled = counter(run.n, run.timeoutMs, 'graphile-worker drain');
    const specs = chunks(run, (i) => ({ identifier: 'bench_noop', payload: { i } }));
    const t0 = performance.now();
    for (const chunk of specs) await utils.addJobs(chunk);
    const t1 = performance.now();
    runner = await runWorker({
      preset: { worker },
      logger,
      noHandleSignals: true,
      taskList: { bench_noop: async () => handled.tick() },
    });
    await handled.done;
    // Done means deleted from the jobs table (completions may still be batched).
    await done.until(run.n, run.timeoutMs, 'graphile-worker completions');
    const t2 = performance.now();
    return {
      enqueue: rate(run.n, t1 - t0),
      drain: rate(run.n, t2 - t1),
      endToEnd: rate(run.n, t2 - t0),
    };
  } finally {
    await runner?.stop();
    await done?.close();
    await utils.release();
    await dropSchema(schema);
  }
}

export async function pgbossRun(run: DrainRun): Promise<Rates> {
  const { default: PgBoss } = await import('pg-boss');
  const schema = uniqueSchema('pgboss');
  const queue = 'bench_noop';
  const boss = new PgBoss({ connectionString: BENCH_DATABASE_URL, schema });
  boss.on('error', (error: Error) => process.stderr.write(`pg-boss: ${error.message}\n`));
  let done: DoneCount | undefined;
  try {
    await boss.start(); // creates the schema, outside the timing
    await boss.createQueue(queue);
    done = await DoneCount.open(
      `SELECT count(*)::integer AS done FROM "${schema}".job WHERE name = '${queue}' AND state = 'completed'`,
    );
    const handled = counter(run.n, run.timeoutMs, 'pg-boss drain');
    const jobs = chunks(run, (i) => ({ name: queue, data: { i } }));
    const t0 = performance.now();
    for (const chunk of jobs) await boss.insert(chunk);
    const t1 = performance.now();
    for (let w = 0; w < PGBOSS_WORKERS; w++) {
      await boss.work<{ i: number }>(
        queue,
        { batchSize: run.concurrency / PGBOSS_WORKERS, pollingIntervalSeconds: 0.5 },
        async (batch) => {
          for (let j = 0; j < batch.length; j++) handled.tick();
        },
      );
    }
    await handled.done;
    await done.until(run.n, run.timeoutMs, 'pg-boss completions');
    const t2 = performance.now();
    return {
      enqueue: rate(run.n, t1 - t0),
      drain: rate(run.n, t2 - t1),
      endToEnd: rate(run.n, t2 - t0),
    };
  } finally {
    await boss.stop({ graceful: false, wait: true, timeout: 5_000 });
    await done?.close();
    await dropSchema(schema);
  }
}
