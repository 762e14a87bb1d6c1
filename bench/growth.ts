/**
 * Do the SQLite and PostgreSQL stores stay fast as the queue grows? With 1,000, 100,000 and
 * 1,000,000 tasks waiting (queued, due a year from now; inserted with enqueueMany in chunks of
 * 10,000), measure
 *   - the enqueue rate, one at a time (SQLite 10,000 tasks, PostgreSQL 2,000: each is a commit of
 *     its own there; due now, runtime not started yet), and
 *   - the drain rate of those due tasks (concurrency 100), from the first task start to the last
 *     success; the time from `start()` to the first task start is reported on its own,
 * median of 3 rounds, and peak resident memory. For each size, the fill and the measurement run
 * in their own child processes, so the measured peak is that of a process working with the full
 * queue, not of the bulk insert (reported on its own). SQLite on a temporary file, PostgreSQL in a
 * fresh schema of the local server, dropped after; PostgreSQL is skipped with the reason when the
 * server cannot be reached. `--quick` uses 1,000 and 20,000 waiting.
 *
 *   node --conditions=source --import tsx bench/growth.ts [--quick] [--database=sqlite|postgres] [--json=PATH]
 *   node --conditions=source --import tsx bench/growth.ts --phase=fill|measure --database=sqlite|postgres
 *                                     --db=PATH|SCHEMA --size=N --out=PATH
 *       (one phase of one size, in its own process; what the parent runs)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createRuntime,
  defineTask,
  type Store,
  type TaskRequest,
} from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';
import { svgBarChart, type Bar } from './svg.js';
import {
  BENCH_DATABASE_URL,
  benchLogger,
  counter,
  dropSchema,
  int,
  median,
  mib,
  parseArgs,
  postgresVersion,
  publish,
  rate,
  settle,
  table,
  tempDatabase,
  uniqueSchema,
  watchdog,
  withPgClient,
  type Check,
} from './lib.js';

const args = parseArgs();
type Database = 'sqlite' | 'postgres';
const SIZES = args.quick ? [1_000, 20_000] : [1_000, 100_000, 1_000_000];
const SMALL = SIZES[0]!;
const LARGE = SIZES[SIZES.length - 1]!;
const FILL_CHUNK = 10_000;
/** Tasks enqueued one at a time then drained, per round. */
const MEASURED: Record<Database, number> = { sqlite: 10_000, postgres: 2_000 };
const LABEL: Record<Database, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };
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

/** SQLite: `location` is the file; PostgreSQL: the schema. */
function openStore(database: Database, location: string): Store {
  return database === 'sqlite'
    ? sqliteStore({ path: location })
    : postgresStore({ connectionString: BENCH_DATABASE_URL, schema: location });
}

/** Inserts `waiting` tasks due in a year, so they stay queued. */
async function fill(database: Database, location: string, waiting: number): Promise<FillResult> {
  const filler = createRuntime({
    store: openStore(database, location),
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
async function measure(
  database: Database,
  location: string,
  waiting: number,
): Promise<MeasureResult> {
  const measured = MEASURED[database];
  const logger = benchLogger();
  const enqueueRuns: number[] = [];
  const drainRuns: number[] = [];
  const startDelays: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const runtime = createRuntime({
      store: openStore(database, location),
      tasks: [noop],
      concurrency: CONCURRENCY,
      logger,
    });
    try {
      const t0 = performance.now();
      for (let i = 0; i < measured; i++) await runtime.enqueue(noop, { i });
      enqueueRuns.push(rate(measured, performance.now() - t0));

      const successes = counter(measured, 120_000, `growth drain (${waiting} waiting)`);
      let firstStart = NaN;
      runtime.on('task:start', () => {
        if (Number.isNaN(firstStart)) firstStart = performance.now();
      });
      runtime.on('task:success', successes.tick);
      const t1 = performance.now();
      await runtime.start();
      await successes.done;
      const t2 = performance.now();
      drainRuns.push(rate(measured, t2 - firstStart));
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

/** The size on disk of a PostgreSQL schema: its tables with their indexes and TOAST. */
function schemaBytes(schema: string): Promise<number> {
  return withPgClient(async (client) => {
    const { rows } = await client.query<{ bytes: string | null }>(
      `SELECT sum(pg_total_relation_size(c.oid))::bigint AS bytes
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind = 'r'`,
      [schema],
    );
    return Number(rows[0]?.bytes ?? 0);
  });
}

/** Runs this script as a child for one phase and returns what it wrote. */
function child<T>(
  phase: 'fill' | 'measure',
  database: Database,
  location: string,
  waiting: number,
): T {
  const out = join(tmpdir(), `offload-bench-growth-${process.pid}-${phase}-${waiting}.json`);
  const run = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      `--phase=${phase}`,
      `--database=${database}`,
      `--db=${location}`,
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

/** Fill and measure each size on a fresh database of `database`, removed afterwards. */
async function sizes(database: Database): Promise<SizeResult[]> {
  const results: SizeResult[] = [];
  for (const waiting of SIZES) {
    process.stderr.write(`bench/growth: ${LABEL[database]}, ${int(waiting)} waiting…\n`);
    if (database === 'sqlite') {
      const db = tempDatabase('growth');
      try {
        const filled = child<FillResult>('fill', database, db.path, waiting);
        const measured = child<MeasureResult>('measure', database, db.path, waiting);
        results.push({ waiting, ...filled, ...measured, dbBytes: fileBytes(db.path) });
      } finally {
        db.cleanup();
      }
    } else {
      const schema = uniqueSchema('growth');
      try {
        const filled = child<FillResult>('fill', database, schema, waiting);
        const measured = child<MeasureResult>('measure', database, schema, waiting);
        results.push({ waiting, ...filled, ...measured, dbBytes: await schemaBytes(schema) });
      } finally {
        await dropSchema(schema);
      }
    }
  }
  return results;
}

/** "Within 10%" read as: not more than 10% slower with the large queue (faster is fine). */
const within = (a: number, b: number) => (a - b) / a <= TOLERANCE;
const change = (a: number, b: number) => `${b >= a ? '+' : ''}${(((b - a) / a) * 100).toFixed(1)}%`;

function checksOf(database: Database, results: SizeResult[]): Check[] {
  const small = results[0]!;
  const large = results[results.length - 1]!;
  const name = LABEL[database];
  return [
    {
      target: `${name}: enqueue rate with ${int(LARGE)} waiting not > 10% below ${int(SMALL)} waiting`,
      measured: `${int(small.enqueue)}/s → ${int(large.enqueue)}/s (${change(small.enqueue, large.enqueue)})`,
      met: within(small.enqueue, large.enqueue),
    },
    {
      target: `${name}: drain rate with ${int(LARGE)} waiting not > 10% below ${int(SMALL)} waiting`,
      measured: `${int(small.drain)}/s → ${int(large.drain)}/s (${change(small.drain, large.drain)})`,
      met: within(small.drain, large.drain),
    },
    {
      target: `${name}: peak RSS while running with ${int(LARGE)} waiting ≤ 200 MB`,
      measured: mib(large.peakRss),
      met: large.peakRss <= RSS_LIMIT,
    },
  ];
}

function sectionOf(database: Database, results: SizeResult[]): string {
  const measured = MEASURED[database];
  return [
    `### Queue growth, ${LABEL[database]} (${int(measured)} enqueued one at a time, then those ${int(measured)} drained at concurrency ${CONCURRENCY}; median of ${ROUNDS} rounds; fill and measurement of each size in their own processes)`,
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
        database === 'sqlite' ? 'db file' : 'schema on disk',
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
  ].join('\n');
}

/** Each rate with more tasks waiting as a percentage of the rate with the fewest. */
function growthBars(database: Database, results: SizeResult[]): Bar[] {
  const small = results[0]!;
  return results.slice(1).flatMap((r) =>
    (['enqueue', 'drain'] as const).map((what) => ({
      label: `${LABEL[database]} ${what}, ${int(r.waiting)} waiting`,
      value: (r[what] / small[what]) * 100,
      note: `${Math.round((r[what] / small[what]) * 100)}% (${int(r[what])}/s)`,
      kind: 'ours' as const,
    })),
  );
}

const phase = args.values.get('phase');
const only = args.values.get('database');
if (phase === 'fill' || phase === 'measure') {
  // Child: one phase of one size, on the database the parent made.
  const database = only as Database;
  const waiting = Number(args.values.get('size'));
  const location = args.values.get('db')!;
  watchdog(190_000, `bench/growth --phase=${phase} --size=${waiting}`);
  const result =
    phase === 'fill'
      ? await fill(database, location, waiting)
      : await measure(database, location, waiting);
  writeFileSync(args.values.get('out')!, JSON.stringify(result));
} else {
  watchdog(args.quick ? 300_000 : 1_100_000, 'bench/growth');
  if (only !== undefined && only !== 'sqlite' && only !== 'postgres')
    throw new Error(`--database must be sqlite or postgres, got ${JSON.stringify(only)}`);
  const databases: Database[] = only ? [only] : ['sqlite', 'postgres'];
  const checks: Check[] = [];
  const sections: string[] = [];
  const bars: Bar[] = [];
  for (const database of databases) {
    if (database === 'postgres') {
      const server = await postgresVersion();
      if ('skipped' in server) {
        sections.push(`### Queue growth, PostgreSQL\n\nSkipped — ${server.skipped}\n`);
        continue;
      }
    }
    const results = await sizes(database);
    checks.push(...checksOf(database, results));
    sections.push(sectionOf(database, results));
    bars.push(...growthBars(database, results));
  }
  publish(args, {
    name: 'growth',
    markdown: sections.join('\n'),
    checks,
    charts: [
      {
        file: 'growth',
        svg: svgBarChart({
          file: 'growth',
          title: `Queue growth: enqueue and drain rates with more tasks waiting, as % of the rate with ${int(SMALL)} waiting (goal: no more than 10% below)`,
          unit: `% of the rate with ${int(SMALL)} waiting`,
          bars,
          target: { value: 90, label: 'goal ≥ 90%' },
        }),
      },
    ],
  });
}
