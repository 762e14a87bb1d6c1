/**
 * Enqueue-to-start latency with the runtime idle (started, empty queue): one task at a time, from
 * just before `enqueue` to the first line of the task's `run`; the next sample waits until the
 * previous task has succeeded, so each one starts from idle. 2,000 samples after a warm-up;
 * p50/p90/p99 on SQLite and memory. The same measure for BullMQ on Redis (an idle Worker, one job
 * at a time), skipped with the reason when Redis or BullMQ is missing.
 *
 *   node --conditions=source --import tsx bench/latency.ts [--quick] [--store=sqlite|memory] [--no-peer] [--json=PATH]
 */
import { createRuntime, defineTask } from '../packages/offload/src/index.js';
import { bullmqLatency, redisVersion } from './peers/bullmq.js';
import {
  benchLogger,
  freshStore,
  LatencyProbe,
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

const probe = new LatencyProbe();
const probeTask = defineTask<{ i: number }>({ name: 'bench.latency', run: probe.started });

async function measure(kind: 'sqlite' | 'memory'): Promise<number[]> {
  const { store, cleanup } = freshStore(kind);
  const runtime = createRuntime({ store, tasks: [probeTask], logger: benchLogger() });
  runtime.on('task:success', probe.done);
  try {
    await runtime.start();
    return await probe.measure(kind, { samples: SAMPLES, warmUp: WARM_UP }, (i) =>
      runtime.enqueue(probeTask, { i }),
    );
  } finally {
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
