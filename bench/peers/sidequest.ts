/**
 * Sidequest on PostgreSQL as a peer of bench/pg-drain.ts. Sidequest 1.16 declares Node ≥ 22.6 but
 * installs (with an engine warning) and runs on Node 20 with its PostgreSQL backend; its SQLite
 * backend does not install (it needs a @sidequest/core release the registry does not have).
 *
 * Configured for throughput as its options document: jobs run in this process (`fork: false`,
 * `runner: 'inline'`: no child process, no worker thread per job), `maxConcurrentJobs` and the
 * queue's concurrency at the benchmark's concurrency, and `jobPollingInterval` 10 ms. Sidequest has
 * no bulk enqueue: jobs are enqueued `chunk` at a time concurrently. The engine is configured
 * (migrations) before the timing and started after the enqueue; the drain is timed until every
 * job is `completed` in the database. A fresh schema, dropped by the caller.
 */
import { rate, settle, withPgClient, BENCH_DATABASE_URL } from '../lib.js';

export interface Rates {
  enqueue: number;
  drain: number;
  endToEnd: number;
}

export async function sidequestRun(
  schema: string,
  n: number,
  chunk: number,
  concurrency: number,
  timeoutMs: number,
): Promise<Rates> {
  const { Sidequest } = await import('sidequest');
  const { NoopJob } = await import('./sidequest-job.js');
  const config = {
    backend: {
      driver: '@sidequest/postgres-backend' as const,
      config: { connection: BENCH_DATABASE_URL, searchPath: schema },
    },
    logger: { level: 'warn' as const },
    queues: [{ name: 'default', concurrency }],
    maxConcurrentJobs: concurrency,
    fork: false,
    runner: 'inline' as const,
    jobPollingInterval: 10,
    dashboard: { enabled: false },
  };
  try {
    await Sidequest.configure(config);
    const t0 = performance.now();
    for (let from = 0; from < n; from += chunk) {
      const batch: Promise<unknown>[] = [];
      for (let i = from; i < Math.min(n, from + chunk); i++)
        batch.push(Sidequest.build(NoopJob).enqueue(i));
      await Promise.all(batch);
    }
    const t1 = performance.now();
    await Sidequest.start(config);
    const deadline = t1 + timeoutMs;
    await withPgClient(async (client) => {
      for (;;) {
        const { rows } = await client.query<{ done: number }>(
          `SELECT count(*)::integer AS done FROM "${schema}".sidequest_jobs WHERE state = 'completed'`,
        );
        const done = rows[0]!.done;
        if (done >= n) return;
        if (performance.now() > deadline) throw new Error(`Sidequest: ${done} of ${n} completed`);
        await settle(20);
      }
    });
    const t2 = performance.now();
    return { enqueue: rate(n, t1 - t0), drain: rate(n, t2 - t1), endToEnd: rate(n, t2 - t0) };
  } finally {
    await Sidequest.stop();
  }
}
