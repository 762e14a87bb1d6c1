/**
 * PostgreSQL drain, one process: enqueue N no-op tasks in bulk, then time until every one has run
 * and is marked done. Reports the enqueue rate, the drain rate and the end-to-end rate, medians of
 * several runs, for Offload's Postgres store and, in the same run, same N and same concurrency:
 *
 * - graphile-worker 0.17, once with its defaults (but `concurrentJobs`) and once with the batching
 *   options of its performance page (`localQueue`, `completeJobBatchDelay`, `failJobBatchDelay`)
 *   plus `useNodeTime`; jobs added with `addJobs` in chunks;
 * - pg-boss 10, jobs added with `insert()` in chunks, worked by `work()` with `batchSize` (v10 has
 *   no `localConcurrency`: one `work()` call is one polling worker, so several calls make up the
 *   concurrency) at the shortest polling interval it accepts;
 * - Sidequest (bench/peers/sidequest.ts), jobs run in this process, one run (it drains a few
 *   hundred jobs/s).
 *
 * Each run is a child process of its own (fresh memory and GC) with a fresh schema, dropped
 * afterwards; the systems alternate, round after round, so that a noisy moment hits all of them.
 * Every system is timed to the same point by the same means: once its handlers ran N times, the
 * child polls the database (one connection, opened before the timing) until all N are done there.
 *
 * Also the enqueue-to-start latency of Offload on Postgres at low load: one task at a time,
 * enqueued through a second store (an API process's) so that the runner learns of it through
 * LISTEN/NOTIFY, a few ms apart.
 *
 *   node --conditions=source --import tsx bench/pg-drain.ts [--quick] [--no-peer] [--json=PATH]
 *     [--systems=offload,graphile-batched,graphile,pgboss,sidequest,offload-latency]
 *
 * The server is the local one (OFFLOAD_BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test); a peer that cannot start is reported as skipped.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRuntime, defineTask, type TaskRequest } from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import {
  chunks,
  DoneCount,
  GRAPHILE_LOCAL_QUEUE,
  GRAPHILE_POOL,
  graphileRun,
  PGBOSS_WORKERS,
  pgbossRun,
  type DrainRun,
  type Rates,
} from './peers/pg-queues.js';
import { sidequestRun } from './peers/sidequest.js';
import { svgBarChart } from './svg.js';
import {
  benchLogger,
  counter,
  int,
  BENCH_DATABASE_URL,
  LatencyProbe,
  dropSchema,
  median,
  ms3,
  packageVersion,
  parseArgs,
  percentile,
  postgresVersion,
  publish,
  rate,
  table,
  uniqueSchema,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
const child = args.values.get('child');
const quick = args.quick;

const N = quick ? 5_000 : 20_000;
const CHUNK = 1_000;
const CONCURRENCY = 100;
const RUNS = quick ? 1 : 3;
const TARGET = 20_000;
/** Longest one run may take, enqueue and drain. pg-boss v10 drains a few hundred jobs/s. */
const RUN_TIMEOUT = quick ? 60_000 : 240_000;
/** What every system's run drains. */
const RUN: DrainRun = { n: N, chunk: CHUNK, concurrency: CONCURRENCY, timeoutMs: RUN_TIMEOUT };
const PGBOSS_BATCH = CONCURRENCY / PGBOSS_WORKERS;
/** Sidequest has no bulk enqueue: this many `enqueue` calls at once. */
const SIDEQUEST_CHUNK = 100;
const LATENCY_SAMPLES = quick ? 200 : 500;
const LATENCY_WARM_UP = 50;
const LATENCY_GAP_MS = 3;

interface Latency {
  samples: number[];
}

type Outcome = { ok: true; rates?: Rates; latency?: Latency } | { ok: false; error: string };

const SYSTEMS = [
  'offload',
  'graphile',
  'graphile-batched',
  'pgboss',
  'sidequest',
  'offload-latency',
] as const;
type System = (typeof SYSTEMS)[number];

const LABELS: Record<System, string> = {
  offload: 'Offload, Postgres store',
  graphile: 'graphile-worker, defaults',
  'graphile-batched': 'graphile-worker, batching on',
  pgboss: 'pg-boss',
  sidequest: 'Sidequest',
  'offload-latency': 'Offload, enqueue-to-start latency',
};

// ---------------------------------------------------------------------------------------------
// The children: one run of one system each.

async function offloadRun(): Promise<Rates> {
  const schema = uniqueSchema('offload');
  const store = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  const handled = counter(N, RUN_TIMEOUT, 'offload postgres drain');
  const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => handled.tick() });
  const runtime = createRuntime({
    store,
    tasks: [noop],
    concurrency: CONCURRENCY,
    logger: benchLogger(),
  });
  let done: DoneCount | undefined;
  try {
    await store.open(); // migrations, outside the timing
    done = await DoneCount.open(
      `SELECT count(*)::integer AS done FROM "${schema}".tasks WHERE state = 'succeeded'`,
    );
    const requests = chunks<TaskRequest>(RUN, (i) => ({ task: noop, payload: { i } }));
    const t0 = performance.now();
    for (const chunk of requests) await runtime.enqueueMany(chunk);
    const t1 = performance.now();
    await runtime.start();
    await handled.done;
    await done.until(N, RUN_TIMEOUT, 'offload completions');
    const t2 = performance.now();
    return { enqueue: rate(N, t1 - t0), drain: rate(N, t2 - t1), endToEnd: rate(N, t2 - t0) };
  } finally {
    await runtime.stop();
    await done?.close();
    await dropSchema(schema);
  }
}

/**
 * One task at a time, enqueued by name through an API-only runtime on its own store, run by the
 * runner of another store on the same schema (woken by NOTIFY): from just before `enqueue` to the
 * task's first line.
 */
async function offloadLatency(): Promise<Latency> {
  const schema = uniqueSchema('offload_latency');
  const probe = new LatencyProbe();
  const probeTask = defineTask<{ i: number }>({ name: 'bench.latency', run: probe.started });
  const runnerStore = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  const runner = createRuntime({ store: runnerStore, tasks: [probeTask], logger: benchLogger() });
  const apiStore = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  const api = createRuntime({ store: apiStore, logger: benchLogger() });
  runner.on('task:success', probe.done);
  try {
    await runnerStore.open();
    await apiStore.open();
    await runner.start();
    const samples = await probe.measure(
      'Offload on PostgreSQL',
      { samples: LATENCY_SAMPLES, warmUp: LATENCY_WARM_UP, gapMs: LATENCY_GAP_MS },
      (i) => api.enqueue('bench.latency', { i }),
    );
    return { samples };
  } finally {
    await api.stop();
    await runner.stop();
    await dropSchema(schema);
  }
}

async function sidequestChild(): Promise<Rates> {
  const schema = uniqueSchema('sidequest');
  try {
    return await sidequestRun(schema, N, SIDEQUEST_CHUNK, CONCURRENCY, RUN_TIMEOUT);
  } finally {
    await dropSchema(schema);
  }
}

async function runChild(system: System): Promise<void> {
  watchdog(RUN_TIMEOUT + 30_000, `bench/pg-drain (${system})`);
  let outcome: Outcome;
  try {
    if (system === 'offload-latency') outcome = { ok: true, latency: await offloadLatency() };
    else {
      const rates =
        system === 'offload'
          ? await offloadRun()
          : system === 'pgboss'
            ? await pgbossRun(RUN)
            : system === 'sidequest'
              ? await sidequestChild()
              : await graphileRun(RUN, system === 'graphile-batched');
      outcome = { ok: true, rates };
    }
  } catch (error) {
    outcome = { ok: false, error: (error as Error).message.split('\n')[0]! };
  }
  process.send!(outcome, () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// The parent: runs each system in children, prints the section.

function forkRun(system: System): Promise<Outcome> {
  const script = fileURLToPath(import.meta.url);
  const proc = fork(script, [`--child=${system}`, ...(quick ? ['--quick'] : [])], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve) => {
    let outcome: Outcome | undefined;
    const timer = setTimeout(() => proc.kill('SIGKILL'), RUN_TIMEOUT + 60_000);
    proc.once('message', (message: Outcome) => (outcome = message));
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(outcome ?? { ok: false, error: `the child exited with ${signal ?? `code ${code}`}` });
    });
  });
}

function medians(runs: readonly Rates[]): Rates {
  return {
    enqueue: median(runs.map((r) => r.enqueue)),
    drain: median(runs.map((r) => r.drain)),
    endToEnd: median(runs.map((r) => r.endToEnd)),
  };
}

async function main(): Promise<void> {
  // Offload and graphile-worker several times, interleaved so that a noisy moment hits all of
  // them; pg-boss once (it takes a minute or more per run at this N).
  watchdog(quick ? 300_000 : 1_000_000, 'bench/pg-drain');
  const notes: string[] = [];
  const runs = new Map<System, Rates[]>();
  const skipped = new Map<System, string>();
  const server = await postgresVersion();
  const version = 'version' in server ? server.version : 'unreachable';
  if ('skipped' in server) for (const system of SYSTEMS) skipped.set(system, server.skipped);
  const only = args.values.get('systems')?.split(',');
  const chosen = (system: System) =>
    only ? only.includes(system) : !args.values.has('no-peer') || system === 'offload';
  const drains = (['offload', 'graphile-batched', 'graphile'] as const).filter(chosen);
  for (let round = 0; round < RUNS; round++) {
    for (const system of drains) {
      if (skipped.has(system)) continue;
      process.stderr.write(`pg-drain: ${system}, run ${round + 1} of ${RUNS}…\n`);
      const outcome = await forkRun(system);
      if (outcome.ok && outcome.rates)
        (runs.get(system) ?? runs.set(system, []).get(system)!).push(outcome.rates);
      else if (!outcome.ok) skipped.set(system, outcome.error);
    }
  }
  for (const system of ['pgboss', 'sidequest'] as const) {
    if (!chosen(system) || skipped.has(system)) continue;
    process.stderr.write(`pg-drain: ${system}, one run…\n`);
    const outcome = await forkRun(system);
    if (outcome.ok && outcome.rates) runs.set(system, [outcome.rates]);
    else if (!outcome.ok) skipped.set(system, outcome.error);
  }
  let latency: number[] | undefined;
  if (chosen('offload-latency') && !skipped.has('offload-latency')) {
    process.stderr.write('pg-drain: offload latency…\n');
    const outcome = await forkRun('offload-latency');
    if (outcome.ok) latency = outcome.latency?.samples;
    else skipped.set('offload-latency', outcome.error);
  }

  const med = new Map([...runs].map(([system, list]) => [system, medians(list)]));
  const rows = [...med].map(([system, m]) => [
    LABELS[system],
    int(m.enqueue),
    int(m.drain),
    int(m.endToEnd),
    runs
      .get(system)!
      .map((r) => int(r.endToEnd))
      .join(', '),
  ]);
  for (const [system, reason] of skipped) notes.push(`- ${LABELS[system]}: skipped — ${reason}`);

  const checks: Check[] = [];
  const ours = med.get('offload');
  const batched = med.get('graphile-batched');
  if (ours) {
    checks.push({
      target: `enqueue + drain ${int(N)}, postgres, end to end: ≥ ${int(TARGET)}/s`,
      measured: `${int(ours.endToEnd)}/s`,
      met: ours.endToEnd >= TARGET,
    });
    if (batched) {
      checks.push(
        {
          target: 'postgres drain ≥ 1.3× graphile-worker with batching, same run',
          measured: `${(ours.drain / batched.drain).toFixed(2)}× (${int(ours.drain)} / ${int(batched.drain)}/s)`,
          met: ours.drain >= 1.3 * batched.drain,
        },
        {
          target: "postgres bulk enqueue ≥ 1.5× graphile-worker's addJobs, same run",
          measured: `${(ours.enqueue / batched.enqueue).toFixed(2)}× (${int(ours.enqueue)} / ${int(batched.enqueue)}/s)`,
          met: ours.enqueue >= 1.5 * batched.enqueue,
        },
      );
    }
    for (const system of ['graphile', 'graphile-batched', 'pgboss', 'sidequest'] as const) {
      const peer = med.get(system);
      if (!peer) continue;
      notes.push(
        `- Offload / ${LABELS[system]}: drain ${(ours.drain / peer.drain).toFixed(2)}×, end to end ${(ours.endToEnd / peer.endToEnd).toFixed(2)}×, enqueue ${(ours.enqueue / peer.enqueue).toFixed(2)}×`,
      );
    }
  }

  const latencySection = latency
    ? [
        `Enqueue-to-start latency, Offload on Postgres, runtime idle: ${int(latency.length)} tasks one at a time, ${LATENCY_GAP_MS} ms apart, enqueued through a second store (as from an API process) so that the runner is woken by LISTEN/NOTIFY; from just before \`enqueue\` to the task's first line:`,
        '',
        table(
          ['p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
          [
            [
              ms3(percentile(latency, 50)),
              ms3(percentile(latency, 90)),
              ms3(percentile(latency, 99)),
              ms3(Math.max(...latency)),
            ],
          ],
        ),
        '',
      ]
    : [];

  publish(args, {
    name: 'pg-drain',
    markdown: [
      `### PostgreSQL: enqueue ${int(N)} no-op tasks in bulk, then drain (one process, concurrency ${CONCURRENCY}; median of ${RUNS}, pg-boss and Sidequest 1 run)`,
      '',
      `PostgreSQL ${version} on loopback; graphile-worker ${packageVersion('graphile-worker')}, pg-boss ${packageVersion('pg-boss')}, pg ${packageVersion('pg')}. Each run in its own process with a fresh schema. Bulk enqueue in chunks of ${int(CHUNK)} (Offload \`enqueueMany\`, graphile-worker \`addJobs\`, pg-boss \`insert\`). graphile-worker: \`concurrentJobs: ${CONCURRENCY}\`, \`maxPoolSize: ${GRAPHILE_POOL}\`; batching on adds \`localQueue: { size: ${GRAPHILE_LOCAL_QUEUE} }\`, \`completeJobBatchDelay: 0\`, \`failJobBatchDelay: 0\`, \`useNodeTime: true\`. pg-boss: ${PGBOSS_WORKERS} \`work()\` calls × \`batchSize: ${PGBOSS_BATCH}\`, \`pollingIntervalSeconds: 0.5\`. Sidequest ${packageVersion('sidequest')} (PostgreSQL backend): \`fork: false\`, \`runner: 'inline'\`, \`maxConcurrentJobs\` and queue concurrency ${CONCURRENCY}, \`jobPollingInterval: 10\`; no bulk enqueue, so ${SIDEQUEST_CHUNK} \`enqueue\` calls at a time. Drain is timed from starting the worker until all ${int(N)} are marked done in the database.`,
      '',
      table(['queue', 'enqueue/s', 'drain/s', 'end to end/s', 'end to end/s per run'], rows),
      '',
      ...(notes.length ? [...notes, ''] : []),
      ...latencySection,
    ].join('\n'),
    checks,
    charts: [
      {
        file: 'pg-drain',
        svg: svgBarChart({
          file: 'pg-drain',
          title: `PostgreSQL: enqueue ${int(N)} no-op tasks in bulk, then drain, one process, concurrency ${CONCURRENCY}: end to end tasks/s (longer is better)`,
          unit: 'tasks/s, end to end',
          bars: [...med].map(([system, m]) => ({
            label: LABELS[system],
            value: m.endToEnd,
            note: `${int(m.endToEnd)}/s`,
            kind: system === 'offload' ? 'ours' : 'peer',
          })),
        }),
      },
    ],
  });
}

if (child !== undefined) {
  if (!(SYSTEMS as readonly string[]).includes(child) || !process.send) {
    throw new Error(`--child must be one of ${SYSTEMS.join(', ')}, started by bench/pg-drain.ts`);
  }
  await runChild(child as System);
} else {
  await main();
}
