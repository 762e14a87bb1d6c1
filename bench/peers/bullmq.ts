/**
 * BullMQ on Redis as a peer of bench/drain.ts and bench/latency.ts.
 *
 * Redis is the local server (127.0.0.1:6379, OFFLOAD_BENCH_REDIS_URL to change it), database
 * index 7 (a database of its own: flushed before and after each run). Configured as BullMQ's docs
 * recommend for throughput: jobs added in bulk with `addBulk`, one Worker with `concurrency` 100,
 * `removeOnComplete` so that Redis does not keep the finished jobs. BullMQ and ioredis are imported
 * lazily, so a missing package skips the peer instead of the script.
 */
import type { Redis } from 'ioredis';
import { counter, LatencyProbe, rate } from '../lib.js';

export const REDIS_URL = process.env.OFFLOAD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/7';
const QUEUE = 'bench-noop';

export interface Rates {
  enqueue: number;
  drain: number;
  endToEnd: number;
}

/** A connection as BullMQ wants it (`maxRetriesPerRequest: null`), failing fast when Redis is down. */
async function connect(): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(REDIS_URL, {
    maxRetriesPerRequest: null,
    connectTimeout: 3_000,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  // Reported through the failed commands; the first one says why a connection failed.
  let failure: Error | undefined;
  redis.on('error', (error: Error) => (failure ??= error));
  try {
    await redis.connect();
  } catch (error) {
    throw failure ?? error;
  }
  return redis;
}

/** The Redis server's version, or why the peer cannot run. */
export async function redisVersion(): Promise<{ version: string } | { skipped: string }> {
  let redis: Redis | undefined;
  try {
    await import('bullmq');
    redis = await connect();
    const info = await redis.info('server');
    return { version: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
  } catch (error) {
    return { skipped: `BullMQ on Redis at ${REDIS_URL}: ${(error as Error).message}` };
  } finally {
    redis?.disconnect();
  }
}

/** Runs `work` on a flushed database, flushed again afterwards; closes every connection. */
async function withRedis<T>(work: (connections: () => Promise<Redis>) => Promise<T>): Promise<T> {
  const opened: Redis[] = [];
  const admin = await connect();
  await admin.flushdb();
  try {
    return await work(async () => {
      const redis = await connect();
      opened.push(redis);
      return redis;
    });
  } finally {
    await admin.flushdb();
    for (const redis of [admin, ...opened]) redis.disconnect();
  }
}

/** Adds `n` no-op jobs with `addBulk` in chunks, then drains them with one Worker. */
export async function bullmqDrain(
  n: number,
  chunk: number,
  concurrency: number,
  timeoutMs: number,
): Promise<Rates> {
  const { Queue, Worker } = await import('bullmq');
  return withRedis(async (connection) => {
    const queue = new Queue(QUEUE, { connection: await connection() });
    const done = counter(n, timeoutMs, 'BullMQ drain');
    let worker: { close(force: boolean): Promise<void> } | undefined;
    try {
      const t0 = performance.now();
      for (let from = 0; from < n; from += chunk) {
        const jobs = [];
        for (let i = from; i < Math.min(n, from + chunk); i++)
          jobs.push({ name: 'noop', data: { i }, opts: { removeOnComplete: true } });
        await queue.addBulk(jobs);
      }
      const t1 = performance.now();
      // `completed` is emitted once the job was moved to completed in Redis.
      const running = new Worker(QUEUE, async () => undefined, {
        connection: await connection(),
        concurrency,
      });
      worker = running;
      running.on('completed', done.tick);
      await done.done;
      const t2 = performance.now();
      return { enqueue: rate(n, t1 - t0), drain: rate(n, t2 - t1), endToEnd: rate(n, t2 - t0) };
    } finally {
      await worker?.close(true);
      await queue.close();
    }
  });
}

/**
 * Enqueue-to-start latency with an idle Worker: one job at a time, from just before `add` to the
 * processor's first line; the next job is added once the previous one completed.
 */
export async function bullmqLatency(samples: number, warmUp: number): Promise<number[]> {
  const { Queue, Worker } = await import('bullmq');
  return withRedis(async (connection) => {
    const probe = new LatencyProbe();
    const queue = new Queue(QUEUE, { connection: await connection() });
    const worker = new Worker(QUEUE, async () => probe.started(), {
      connection: await connection(),
      concurrency: 1,
    });
    worker.on('completed', probe.done);
    try {
      await worker.waitUntilReady();
      return await probe.measure('BullMQ', { samples, warmUp }, (i) =>
        queue.add('probe', { i }, { removeOnComplete: true }),
      );
    } finally {
      await worker.close(true);
      await queue.close();
    }
  });
}
