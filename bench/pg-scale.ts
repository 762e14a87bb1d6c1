/**
 * PostgreSQL across processes, on one database:
 *
 * - drain: N no-op tasks stored in bulk, then 1, 2 and 4 worker processes (each a runtime at
 *   concurrency 100, the defaults otherwise) started at once, timed until every task is succeeded
 *   in the database; rounds alternate the process counts, medians reported. Each run also gives
 *   the store's round trips per task (claims and settles, counted in the workers) and the WAL the
 *   server wrote per task (pg_current_wal_lsn() before and after; the whole server's WAL, so what
 *   other clients write at the same time counts too: the lowest run is the closest);
 * - enqueue: 1 and 4 API processes at once, each storing its share of N, in bulk (enqueueMany,
 *   chunks of 1,000) and as single enqueues with 100 in flight per process (as the HTTP path
 *   makes them: the calls of one event-loop turn share a transaction); one at a time for scale;
 * - with `--waiting=1000000`, the single enqueues again with that many tasks waiting (due in a
 *   year), stored first in bulk.
 *
 *   node --conditions=source --import tsx bench/pg-scale.ts [--quick] [--waiting=N] [--json=PATH]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createRuntime, defineTask, type TaskRequest } from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import type { Store } from '../packages/offload/src/store/store.js';
import {
  BENCH_DATABASE_URL,
  benchLogger,
  dropSchema,
  int,
  median,
  parseArgs,
  publish,
  rate,
  table,
  uniqueSchema,
  watchdog,
  withPgClient,
  type Check,
} from './lib.js';
import { chunks, DoneCount } from './peers/pg-queues.js';

const args = parseArgs();
const quick = args.quick;
const N = quick ? 10_000 : 40_000;
const ROUNDS = quick ? 1 : 3;
const PROCESSES = [1, 2, 4];
const CONCURRENCY = 100;
const CHUNK = 1_000;
const IN_FLIGHT = 100;
const SERIAL = quick ? 500 : 2_000;
const WAITING = Number(args.values.get('waiting') ?? 0);
const RUN_TIMEOUT = 180_000;
const YEAR = 365 * 24 * 3600 * 1000;

type Mode = 'bulk' | 'single' | 'serial';
type ToChild = { go: true } | { stop: true };
type FromChild =
  | { ready: true }
  | { counts: { claims: number; settles: number } }
  | { enqueued: number; ms: number };

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

// ---------------------------------------------------------------------------------------------
// Children.

/** Counts the store's claims and settles: each is one round trip. */
function counted(store: Store): { store: Store; counts: { claims: number; settles: number } } {
  const counts = { claims: 0, settles: 0 };
  const claim = store.claim.bind(store);
  const settle = store.settle.bind(store);
  store.claim = (request) => (counts.claims++, claim(request));
  store.settle = (settlements) => (counts.settles++, settle(settlements));
  return { store, counts };
}

function send(message: FromChild): void {
  process.send!(message);
}

function next(): Promise<ToChild> {
  return new Promise((resolve) => process.once('message', resolve));
}

async function worker(schema: string): Promise<void> {
  const { store, counts } = counted(
    postgresStore({ connectionString: BENCH_DATABASE_URL, schema }),
  );
  const runtime = createRuntime({
    store,
    tasks: [noop],
    concurrency: CONCURRENCY,
    logger: benchLogger(),
  });
  await store.open();
  send({ ready: true });
  await next();
  await runtime.start();
  await next();
  await runtime.stop();
  send({ counts });
}

async function api(schema: string, mode: Mode, count: number): Promise<void> {
  const store = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  const runtime = createRuntime({ store, logger: benchLogger() });
  await store.open();
  send({ ready: true });
  await next();
  const t0 = performance.now();
  if (mode === 'bulk') {
    const requests = chunks<TaskRequest>(
      { n: count, chunk: CHUNK, concurrency: 0, timeoutMs: 0 },
      (i) => ({
        task: 'bench.noop',
        payload: { i },
      }),
    );
    for (const chunk of requests) await runtime.enqueueMany(chunk);
  } else {
    const inFlight = mode === 'serial' ? 1 : IN_FLIGHT;
    let i = 0;
    const lane = async () => {
      while (i < count) await runtime.enqueue('bench.noop', { i: i++ });
    };
    await Promise.all(Array.from({ length: inFlight }, lane));
  }
  send({ enqueued: count, ms: performance.now() - t0 });
  await runtime.stop();
}

// ---------------------------------------------------------------------------------------------
// The parent.

function spawn(role: string, schema: string, extra: string[] = []): ChildProcess {
  return fork(fileURLToPath(import.meta.url), [`--child=${role}`, `--schema=${schema}`, ...extra], {
    execArgv: ['--conditions=source', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function message<T extends FromChild>(child: ChildProcess): Promise<T> {
  return once(child, 'message').then(([m]) => m as T);
}

async function walLsn(): Promise<string> {
  return withPgClient(
    async (c) => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn() AS l')).rows[0]!.l,
  );
}

async function walSince(lsn: string): Promise<number> {
  return withPgClient(async (c) =>
    Number(
      (await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [lsn]))
        .rows[0]!.d,
    ),
  );
}

/** Fills a fresh schema with `count` no-op tasks (due now, or in a year). */
async function fill(schema: string, count: number, later = false): Promise<void> {
  const store = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  const runtime = createRuntime({ store, logger: benchLogger() });
  const runAt = later ? new Date(Date.now() + YEAR) : undefined;
  for (const chunk of chunks<TaskRequest>(
    { n: count, chunk: 5_000, concurrency: 0, timeoutMs: 0 },
    (i) => ({
      task: 'bench.noop',
      payload: { i },
      options: runAt ? { runAt } : {},
    }),
  ))
    await runtime.enqueueMany(chunk);
  await runtime.stop();
}

interface DrainResult {
  rate: number;
  walPerTask: number;
  tripsPerTask: number;
  claimsPerTask: number;
}

async function drainRun(processes: number): Promise<DrainResult> {
  const schema = uniqueSchema(`scale_${processes}`);
  const workers: ChildProcess[] = [];
  let done: DoneCount | undefined;
  try {
    await fill(schema, N);
    for (let p = 0; p < processes; p++) workers.push(spawn('worker', schema));
    await Promise.all(workers.map((w) => message(w)));
    done = await DoneCount.open(
      `SELECT count(*)::integer AS done FROM "${schema}".tasks WHERE state = 'succeeded'`,
    );
    const lsn = await walLsn();
    const t0 = performance.now();
    for (const w of workers) w.send({ go: true });
    await done.until(N, RUN_TIMEOUT, `${processes} workers`);
    const ms = performance.now() - t0;
    const wal = await walSince(lsn);
    const counts = await Promise.all(
      workers.map((w) => {
        w.send({ stop: true });
        return message<{ counts: { claims: number; settles: number } }>(w);
      }),
    );
    const claims = counts.reduce((sum, c) => sum + c.counts.claims, 0);
    const settles = counts.reduce((sum, c) => sum + c.counts.settles, 0);
    return {
      rate: rate(N, ms),
      walPerTask: wal / N,
      tripsPerTask: (claims + settles) / N,
      claimsPerTask: claims / N,
    };
  } finally {
    await done?.close();
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    await dropSchema(schema);
  }
}

async function enqueueRun(processes: number, mode: Mode, waiting: number): Promise<number> {
  const schema = uniqueSchema(`scale_enq_${processes}`);
  const each = mode === 'serial' ? SERIAL : Math.floor(N / processes);
  const apis: ChildProcess[] = [];
  try {
    if (waiting > 0) await fill(schema, waiting, true);
    else await postgresStore({ connectionString: BENCH_DATABASE_URL, schema }).open();
    for (let p = 0; p < processes; p++)
      apis.push(spawn('api', schema, [`--mode=${mode}`, `--count=${each}`]));
    await Promise.all(apis.map((a) => message(a)));
    const t0 = performance.now();
    for (const a of apis) a.send({ go: true });
    await Promise.all(apis.map((a) => message(a)));
    return rate(each * processes, performance.now() - t0);
  } finally {
    for (const a of apis) if (a.exitCode === null) await once(a, 'exit');
    await dropSchema(schema);
  }
}

async function main(): Promise<void> {
  watchdog(quick ? 300_000 : 900_000, 'bench/pg-scale');
  const drains = new Map<number, DrainResult[]>(PROCESSES.map((p) => [p, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of PROCESSES) {
      process.stderr.write(`pg-scale: drain, ${p} processes, run ${round + 1} of ${ROUNDS}…\n`);
      drains.get(p)!.push(await drainRun(p));
    }
  }
  const enqueues: [string, number][] = [];
  for (const [p, mode] of [
    [1, 'bulk'],
    [4, 'bulk'],
    [1, 'single'],
    [4, 'single'],
    [1, 'serial'],
  ] as const) {
    process.stderr.write(`pg-scale: enqueue, ${p} processes, ${mode}…\n`);
    const runs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) runs.push(await enqueueRun(p, mode, 0));
    enqueues.push([`${p} × ${mode}`, median(runs)]);
  }
  if (WAITING > 0) {
    for (const [p, mode] of [
      [1, 'single'],
      [1, 'serial'],
    ] as const) {
      process.stderr.write(`pg-scale: enqueue, ${mode}, ${int(WAITING)} waiting…\n`);
      enqueues.push([
        `${p} × ${mode}, ${int(WAITING)} waiting`,
        await enqueueRun(p, mode, WAITING),
      ]);
    }
  }

  const one = median(drains.get(1)!.map((r) => r.rate));
  const rows = PROCESSES.map((p) => {
    const runs = drains.get(p)!;
    const m = median(runs.map((r) => r.rate));
    return [
      String(p),
      int(m),
      `${(m / one).toFixed(2)}×`,
      runs.map((r) => int(r.rate)).join(', '),
      median(runs.map((r) => r.tripsPerTask * 1000)).toFixed(1),
      median(runs.map((r) => r.claimsPerTask * 1000)).toFixed(1),
      int(Math.min(...runs.map((r) => r.walPerTask))),
    ];
  });
  const two = median(drains.get(2)!.map((r) => r.rate));
  const checks: Check[] = [
    {
      target: 'postgres drain, 2 worker processes ≥ 1.6× one',
      measured: `${(two / one).toFixed(2)}×`,
      met: two / one >= 1.6,
    },
  ];
  publish(args, {
    name: 'pg-scale',
    markdown: [
      `### PostgreSQL: ${int(N)} no-op tasks drained by 1, 2 and 4 worker processes (concurrency ${CONCURRENCY} each; median of ${ROUNDS})`,
      '',
      table(
        [
          'processes',
          'drain/s',
          'against 1',
          'per run',
          'round trips / 1,000 tasks',
          'claims / 1,000 tasks',
          'WAL bytes / task (lowest)',
        ],
        rows,
      ),
      '',
      `Enqueue of ${int(N)} tasks (serial: ${int(SERIAL)}), median of ${ROUNDS}: bulk = enqueueMany in chunks of ${int(CHUNK)}; single = runtime.enqueue with ${IN_FLIGHT} in flight per process; serial = one at a time.`,
      '',
      table(
        ['API processes × mode', 'tasks/s'],
        enqueues.map(([label, r]) => [label, int(r)]),
      ),
      '',
    ].join('\n'),
    checks,
  });
}

const child = args.values.get('child');
if (child !== undefined) {
  watchdog(RUN_TIMEOUT + 60_000, `bench/pg-scale (${child})`);
  const schema = args.values.get('schema')!;
  if (child === 'worker') await worker(schema);
  else await api(schema, args.values.get('mode') as Mode, Number(args.values.get('count')));
  process.disconnect();
} else {
  await main();
}
