/**
 * Does the SQLite store stay fast as the queue grows? With 1,000 and with 1,000,000 tasks waiting
 * (queued, due a year from now; inserted with enqueueMany in chunks of 10,000), measure
 *   - the enqueue rate, one at a time (10,000 tasks, due now, runtime not started yet), and
 *   - the drain rate of those 10,000 due tasks (concurrency 100), from the first task start to the
 *     last success; the time from `start()` to the first task start is reported on its own,
 * median of 3 rounds, and peak resident memory. For each size, the fill and the measurement run
 * in their own child processes, so the measured peak is that of a process working with the full
 * queue, not of the bulk insert (reported on its own). `--quick` uses 100,000 instead of 1,000,000.
 *
 *   node --import tsx bench/growth.ts [--quick] [--json=PATH]
 *   node --import tsx bench/growth.ts --phase=fill|measure --db=PATH --size=N --out=PATH
 *       (one phase of one size, in its own process; what the parent runs)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRuntime, defineTask, sqliteStore, type TaskRequest } from '../src/index.js';
import {
  benchLogger,
  counter,
  int,
  median,
  mib,
  parseArgs,
  publish,
  rate,
  settle,
  table,
  tempDatabase,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
const SMALL = 1_000;
const LARGE = args.quick ? 100_000 : 1_000_000;
const FILL_CHUNK = 10_000;
const MEASURED = 10_000;
const ROUNDS = 3;
const CONCURRENCY = 100;
const RSS_LIMIT = 200 * 1024 * 1024;
const TOLERANCE = 0.1;
const YEAR = 365 * 24 * 3600 * 1000;

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

interface FillResult {
  fillRate: number;
  /** Peak resident memory of the fill process, bytes. */
  fillPeakRss: number;
}

interface MeasureResult {
  enqueue: number;
  drain: number;
  startToFirstMs: number;
  enqueueRuns: number[];
  drainRuns: number[];
  /** Peak resident memory of the measuring process (queue already full), bytes. */
  peakRss: number;
  rssAtEnd: number;
}

type SizeResult = FillResult & MeasureResult & { waiting: number; dbBytes: number };

/** Inserts `waiting` tasks due in a year, so they stay queued. */
async function fill(path: string, waiting: number): Promise<FillResult> {
  const filler = createRuntime({
    store: sqliteStore({ path }),
    tasks: [noop],
    logger: benchLogger(),
  });
  const runAt = new Date(Date.now() + YEAR);
  const started = performance.now();
  for (let from = 0; from < waiting; from += FILL_CHUNK) {
    const chunk: TaskRequest[] = [];
    for (let i = from; i < Math.min(waiting, from + FILL_CHUNK); i++)
      chunk.push({ task: noop, payload: { i }, options: { runAt } });
    await filler.enqueueMany(chunk);
  }
  const fillRate = rate(waiting, performance.now() - started);
  await filler.stop();
  return { fillRate, fillPeakRss: process.resourceUsage().maxRSS * 1024 };
}

/** Rounds of: enqueue MEASURED one at a time (not started), then start and drain them. */
async function measure(path: string, waiting: number): Promise<MeasureResult> {
  const logger = benchLogger();
  const enqueueRuns: number[] = [];
  const drainRuns: number[] = [];
  const startDelays: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const runtime = createRuntime({
      store: sqliteStore({ path }),
      tasks: [noop],
      concurrency: CONCURRENCY,
      logger,
    });
    try {
      const t0 = performance.now();
      for (let i = 0; i < MEASURED; i++) await runtime.enqueue(noop, { i });
      enqueueRuns.push(rate(MEASURED, performance.now() - t0));

      const successes = counter(MEASURED, 120_000, `growth drain (${waiting} waiting)`);
      let firstStart = NaN;
      runtime.on('task:start', () => {
        if (Number.isNaN(firstStart)) firstStart = performance.now();
      });
      runtime.on('task:success', successes.tick);
      const t1 = performance.now();
      await runtime.start();
      await successes.done;
      const t2 = performance.now();
      drainRuns.push(rate(MEASURED, t2 - firstStart));
      startDelays.push(firstStart - t1);
    } finally {
      await runtime.stop();
    }
    await settle();
  }
  return {
    enqueue: median(enqueueRuns),
    drain: median(drainRuns),
    startToFirstMs: median(startDelays),
    enqueueRuns,
    drainRuns,
    peakRss: process.resourceUsage().maxRSS * 1024,
    rssAtEnd: process.memoryUsage().rss,
  };
}

function fileBytes(path: string): number {
  return ['', '-wal'].reduce((sum, suffix) => {
    try {
      return sum + statSync(path + suffix).size;
    } catch {
      return sum;
    }
  }, 0);
}

/** Runs this script as a child for one phase and returns what it wrote. */
function child<T>(phase: 'fill' | 'measure', path: string, waiting: number): T {
  const out = join(tmpdir(), `offload-bench-growth-${process.pid}-${phase}-${waiting}.json`);
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      `--phase=${phase}`,
      `--db=${path}`,
      `--size=${waiting}`,
      `--out=${out}`,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'], timeout: 200_000 },
  );
  if (run.status !== 0)
    throw new Error(
      `growth ${phase} child for ${waiting} waiting failed (status ${run.status}, signal ${run.signal})`,
    );
  const result = JSON.parse(readFileSync(out, 'utf8')) as T;
  rmSync(out, { force: true });
  return result;
}

const phase = args.values.get('phase');
if (phase === 'fill' || phase === 'measure') {
  // Child: one phase of one size, on the database the parent made.
  const waiting = Number(args.values.get('size'));
  const path = args.values.get('db')!;
  watchdog(190_000, `bench/growth --phase=${phase} --size=${waiting}`);
  const result = phase === 'fill' ? await fill(path, waiting) : await measure(path, waiting);
  writeFileSync(args.values.get('out')!, JSON.stringify(result));
} else {
  watchdog(330_000, 'bench/growth');
  const results: SizeResult[] = [];
  for (const waiting of [SMALL, LARGE]) {
    const db = tempDatabase('growth');
    try {
      const filled = child<FillResult>('fill', db.path, waiting);
      const measured = child<MeasureResult>('measure', db.path, waiting);
      results.push({ waiting, ...filled, ...measured, dbBytes: fileBytes(db.path) });
    } finally {
      db.cleanup();
    }
  }
  const [small, large] = results as [SizeResult, SizeResult];
  /** "Within 10%" read as: not more than 10% slower with the large queue (faster is fine). */
  const within = (a: number, b: number) => (a - b) / a <= TOLERANCE;
  const change = (a: number, b: number) =>
    `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;
  const checks: Check[] = [
    {
      target: `enqueue rate with ${int(LARGE)} waiting not > 10% below ${int(SMALL)} waiting`,
      measured: `${int(small.enqueue)}/s → ${int(large.enqueue)}/s (${change(small.enqueue, large.enqueue)})`,
      met: within(small.enqueue, large.enqueue),
    },
    {
      target: `drain rate with ${int(LARGE)} waiting not > 10% below ${int(SMALL)} waiting`,
      measured: `${int(small.drain)}/s → ${int(large.drain)}/s (${change(small.drain, large.drain)})`,
      met: within(small.drain, large.drain),
    },
    {
      target: `peak RSS while running with ${int(LARGE)} waiting ≤ 200 MB`,
      measured: mib(large.peakRss),
      met: large.peakRss <= RSS_LIMIT,
    },
  ];
  publish(args, {
    name: 'growth',
    markdown: [
      `### Queue growth, SQLite (${int(MEASURED)} enqueued one at a time, then those ${int(MEASURED)} drained at concurrency ${CONCURRENCY}; median of ${ROUNDS} rounds; fill and measurement of each size in their own processes)`,
      '',
      table(
        [
          'tasks waiting',
          'fill (enqueueMany)/s',
          'fill process peak RSS',
          'enqueue/s',
          'drain/s',
          'start() → first task',
          'peak RSS (measuring process)',
          'RSS at end',
          'db file',
        ],
        results.map((r) => [
          int(r.waiting),
          int(r.fillRate),
          mib(r.fillPeakRss),
          `${int(r.enqueue)} (${r.enqueueRuns.map(int).join(', ')})`,
          `${int(r.drain)} (${r.drainRuns.map(int).join(', ')})`,
          `${r.startToFirstMs.toFixed(1)} ms`,
          mib(r.peakRss),
          mib(r.rssAtEnd),
          mib(r.dbBytes),
        ]),
      ),
      '',
    ].join('\n'),
    checks,
  });
}
