/**
 * Enqueue-to-start latency with the runtime idle (started, empty queue): one task at a time, from
 * just before `enqueue` to the first line of the task's `run`; the next sample waits until the
 * previous task has succeeded, so each one starts from idle. 2,000 samples after a warm-up;
 * p50/p90/p99 on SQLite and memory. The same measure for BullMQ on Redis (an idle Worker, one job
 * at a time), skipped with the reason when Redis or BullMQ is missing.
 *
 *   node --import tsx bench/latency.ts [--quick] [--store=sqlite|memory] [--no-peer] [--json=PATH]
 */
import { createRuntime, defineTask } from '../src/index.js';
import { bullmqLatency, redisVersion } from './peers/bullmq.js';
import {
  benchLogger,
  freshStore,
  ms3,
  parseArgs,
  percentile,
  publish,
  table,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
watchdog(args.quick ? 60_000 : 180_000, 'bench/latency');

const SAMPLES = args.quick ? 500 : 2_000;
const WARM_UP = 200;
const TARGET_P50 = 1;
const SAMPLE_TIMEOUT = 5_000;

/** Resolved by the task's first line with performance.now(). */
let onStart: ((at: number) => void) | undefined;
const probe = defineTask<{ i: number }>({
  name: 'bench.latency',
  run: () => {
    const at = performance.now();
    onStart?.(at);
  },
});

async function measure(kind: 'sqlite' | 'memory'): Promise<number[]> {
  const { store, cleanup } = freshStore(kind);
  const runtime = createRuntime({ store, tasks: [probe], logger: benchLogger() });
  let onSuccess: (() => void) | undefined;
  runtime.on('task:success', () => onSuccess?.());
  const samples: number[] = [];
  try {
    await runtime.start();
    for (let i = 0; i < WARM_UP + SAMPLES; i++) {
      const started = new Promise<number>((resolve) => (onStart = resolve));
      const succeeded = new Promise<void>((resolve) => (onSuccess = resolve));
      const timeout = setTimeout(() => onStart?.(NaN), SAMPLE_TIMEOUT);
      const before = performance.now();
      const enqueued = runtime.enqueue(probe, { i });
      const at = await started;
      clearTimeout(timeout);
      if (Number.isNaN(at))
        throw new Error(`${kind}: sample ${i} did not start within ${SAMPLE_TIMEOUT} ms`);
      await enqueued;
      await succeeded;
      if (i >= WARM_UP) samples.push(at - before);
    }
    return samples;
  } finally {
    onStart = undefined;
    await runtime.stop();
    cleanup();
  }
}

const rows: string[][] = [];
const checks: Check[] = [];
const notes: string[] = [];
const row = (who: string, samples: number[]) =>
  rows.push([
    who,
    ...[50, 90, 99].map((p) => ms3(percentile(samples, p))),
    ms3(Math.max(...samples)),
  ]);
for (const kind of args.stores) {
  const samples = await measure(kind);
  const p50 = percentile(samples, 50);
  row(kind, samples);
  checks.push({
    target: `enqueue-to-start p50, ${kind}, idle: ≤ ${TARGET_P50} ms`,
    measured: `${ms3(p50)} ms`,
    met: p50 <= TARGET_P50,
  });
}

if (!args.values.has('no-peer')) {
  const redis = await redisVersion();
  if ('skipped' in redis) notes.push(`- BullMQ on Redis: skipped — ${redis.skipped}`);
  else {
    try {
      row(`BullMQ on Redis ${redis.version}`, await bullmqLatency(SAMPLES, WARM_UP));
      notes.push(
        "- BullMQ: one Worker (`concurrency: 1`), idle and waiting on Redis; from just before `queue.add` to the processor's first line.",
      );
    } catch (error) {
      notes.push(`- BullMQ on Redis: skipped — ${(error as Error).message.split('\n')[0]}`);
    }
  }
}

publish(args, {
  name: 'latency',
  markdown: [
    `### Enqueue-to-start latency, runtime idle (${SAMPLES.toLocaleString('en-US')} sequential samples after ${WARM_UP} warm-up; ms)`,
    '',
    table(['store', 'p50', 'p90', 'p99', 'max'], rows),
    '',
    ...(notes.length ? [...notes, ''] : []),
  ].join('\n'),
  checks,
});
