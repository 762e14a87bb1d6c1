/**
 * Enqueue 100,000 no-op tasks (enqueueMany in chunks), then start the runtime and time until every
 * one has succeeded (counted through `task:success`). Reports the enqueue rate, the drain rate and
 * the end-to-end rate, on SQLite and memory, concurrency 100.
 *
 * Peer, in the same run: plainjob on the same kind of SQLite file (WAL, synchronous NORMAL — what
 * plainjob sets itself), same N, a no-op job; once with one in-process worker (like ours: one
 * process) and once with one forked worker process per CPU, as plainjob's README recommends for
 * high throughput. And BullMQ on Redis (bench/peers/bullmq.ts): the same N added with `addBulk` in
 * the same chunks, drained by one Worker at the same concurrency. A peer that cannot start is
 * reported as skipped with the reason.
 *
 *   node --conditions=source --import tsx bench/drain.ts [--quick] [--store=sqlite|memory] [--no-peer] [--json=PATH]
 */
import { fork } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createRuntime, defineTask, type TaskRequest } from '../packages/offload/src/index.js';
import { bullmqDrain, redisVersion } from './peers/bullmq.js';
import { svgBarChart } from './svg.js';
import {
  benchLogger,
  counter,
  freshStore,
  int,
  median,
  packageVersion,
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
watchdog(args.quick ? 120_000 : 420_000, 'bench/drain');

const N = args.quick ? 20_000 : 100_000;
const CHUNK = 1_000;
const CONCURRENCY = 100;
const RUNS = args.quick ? 1 : 3;
const TARGET = 50_000;
/** The targets: Offload on SQLite drains ≥ 3× plainjob and ≥ 4× BullMQ. */
const TARGET_PLAINJOB = 3;
const TARGET_BULLMQ = 4;
const DRAIN_TIMEOUT = 120_000;

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

interface Rates {
  enqueue: number;
  drain: number;
  endToEnd: number;
}

async function ours(kind: 'sqlite' | 'memory'): Promise<Rates> {
  const { store, cleanup } = freshStore(kind);
  const runtime = createRuntime({
    store,
    tasks: [noop],
    concurrency: CONCURRENCY,
    logger: benchLogger(),
  });
  const successes = counter(N, DRAIN_TIMEOUT, `offload ${kind} drain`);
  runtime.on('task:success', successes.tick);
  try {
    const t0 = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const chunk: TaskRequest[] = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i++)
        chunk.push({ task: noop, payload: { i } });
      await runtime.enqueueMany(chunk);
    }
    const t1 = performance.now();
    await runtime.start();
    await successes.done;
    const t2 = performance.now();
    return { enqueue: rate(N, t1 - t0), drain: rate(N, t2 - t1), endToEnd: rate(N, t2 - t0) };
  } finally {
    await runtime.stop();
    cleanup();
  }
}

/** plainjob is imported lazily so that a failed install skips the peer instead of the script. */
async function plainjobInProcess(): Promise<Rates> {
  const { better, defineQueue, defineWorker } = await import('plainjob');
  const db = tempDatabase('plainjob');
  const quiet = {
    error: () => undefined,
    warn: () => undefined,
    info: () => undefined,
    debug: () => undefined,
  };
  const queue = defineQueue({ connection: better(new Database(db.path)), logger: quiet });
  const done = counter(N, DRAIN_TIMEOUT, 'plainjob drain');
  const worker = defineWorker('bench.noop', () => undefined, {
    queue,
    logger: quiet,
    pollIntervall: 10,
    onCompleted: done.tick,
  });
  try {
    const t0 = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const chunk: { i: number }[] = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i++) chunk.push({ i });
      queue.addMany('bench.noop', chunk);
    }
    const t1 = performance.now();
    const running = worker.start();
    await done.done;
    const t2 = performance.now();
    await worker.stop();
    await running;
    return { enqueue: rate(N, t1 - t0), drain: rate(N, t2 - t1), endToEnd: rate(N, t2 - t0) };
  } finally {
    queue.close();
    db.cleanup();
  }
}

/** One plainjob worker process per CPU on one file; the parent counts done jobs. */
async function plainjobProcesses(workers: number): Promise<Rates> {
  const { better, defineQueue, JobStatus } = await import('plainjob');
  const db = tempDatabase('plainjob-mp');
  const quiet = {
    error: () => undefined,
    warn: () => undefined,
    info: () => undefined,
    debug: () => undefined,
  };
  const queue = defineQueue({ connection: better(new Database(db.path)), logger: quiet });
  const script = fileURLToPath(new URL('./plainjob-worker.ts', import.meta.url));
  const children = Array.from({ length: workers }, () =>
    fork(script, [db.path], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const exited = children.map(
    (child) => new Promise<void>((resolve) => child.once('exit', () => resolve())),
  );
  try {
    await Promise.all(
      children.map(
        (child) => new Promise<void>((resolve) => child.once('message', () => resolve())),
      ),
    );
    const t0 = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const chunk: { i: number }[] = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i++) chunk.push({ i });
      queue.addMany('bench.noop', chunk);
    }
    const t1 = performance.now();
    for (const child of children) child.send('go');
    const deadline = t1 + DRAIN_TIMEOUT;
    while (queue.countJobs({ status: JobStatus.Done }) < N) {
      if (performance.now() > deadline)
        throw new Error('plainjob (processes) did not drain in time');
      await settle(5);
    }
    const t2 = performance.now();
    return { enqueue: rate(N, t1 - t0), drain: rate(N, t2 - t1), endToEnd: rate(N, t2 - t0) };
  } finally {
    for (const child of children) if (child.connected) child.send('stop');
    const timeout = setTimeout(() => children.forEach((child) => child.kill()), 10_000);
    await Promise.all(exited);
    clearTimeout(timeout);
    queue.close();
    db.cleanup();
  }
}

function medians(runs: Rates[]): Rates {
  return {
    enqueue: median(runs.map((r) => r.enqueue)),
    drain: median(runs.map((r) => r.drain)),
    endToEnd: median(runs.map((r) => r.endToEnd)),
  };
}

async function repeat(run: () => Promise<Rates>): Promise<{ med: Rates; runs: Rates[] }> {
  const runs: Rates[] = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(await run());
    await settle();
  }
  return { med: medians(runs), runs };
}

const rows: string[][] = [];
const checks: Check[] = [];
const notes: string[] = [];
const results = new Map<string, Rates>();
const row = (who: string, med: Rates, runs: Rates[]) =>
  rows.push([
    who,
    int(med.enqueue),
    int(med.drain),
    int(med.endToEnd),
    runs.map((r) => int(r.drain)).join(', '),
  ]);

for (const kind of args.stores) {
  const { med, runs } = await repeat(() => ours(kind));
  results.set(kind, med);
  row(`offload, ${kind}`, med, runs);
  if (kind === 'sqlite') {
    checks.push({
      target: `enqueue + drain ${int(N)}, sqlite, end to end: ≥ ${int(TARGET)}/s`,
      measured: `${int(med.endToEnd)}/s`,
      met: med.endToEnd >= TARGET,
    });
  }
}

const BULLMQ = 'BullMQ on Redis, 1 Worker';
if (!args.values.has('no-peer')) {
  const workers = cpus().length;
  const redis = await redisVersion();
  const peers: [string, () => Promise<Rates>][] = [
    ['plainjob, 1 in-process worker', plainjobInProcess],
    [`plainjob, ${workers} worker processes`, () => plainjobProcesses(workers)],
  ];
  if ('skipped' in redis) notes.push(`- ${BULLMQ}: skipped — ${redis.skipped}`);
  else {
    peers.push([BULLMQ, () => bullmqDrain(N, CHUNK, CONCURRENCY, DRAIN_TIMEOUT)]);
    notes.push(
      `- BullMQ ${packageVersion('bullmq')} (ioredis ${packageVersion('ioredis')}) on Redis ${redis.version}, 127.0.0.1, a database index of its own flushed before and after; \`addBulk\` in chunks of ${int(CHUNK)}, one Worker, \`concurrency: ${CONCURRENCY}\`, \`removeOnComplete: true\`; drain timed until the last \`completed\` event.`,
    );
  }
  for (const [who, run] of peers) {
    try {
      const { med, runs } = await repeat(run);
      results.set(who, med);
      row(who, med, runs);
    } catch (error) {
      notes.push(`- ${who}: skipped — ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const sqlite = results.get('sqlite');
  if (sqlite) {
    for (const [who] of peers) {
      const peer = results.get(who);
      if (!peer) continue;
      notes.push(
        `- offload sqlite / ${who}: drain ${(sqlite.drain / peer.drain).toFixed(2)}×, end to end ${(sqlite.endToEnd / peer.endToEnd).toFixed(2)}×`,
      );
    }
    // Against the faster plainjob configuration.
    const plainjob = [...results.entries()]
      .filter(([who]) => who.startsWith('plainjob'))
      .sort(([, a], [, b]) => b.drain - a.drain)[0];
    if (plainjob) {
      checks.push({
        target: `sqlite drain ≥ ${TARGET_PLAINJOB}× plainjob (its faster configuration, same run)`,
        measured: `${(sqlite.drain / plainjob[1].drain).toFixed(2)}× (${plainjob[0]}, ${int(plainjob[1].drain)}/s)`,
        met: sqlite.drain >= TARGET_PLAINJOB * plainjob[1].drain,
      });
    }
    const bullmq = results.get(BULLMQ);
    if (bullmq) {
      checks.push({
        target: `sqlite drain ≥ ${TARGET_BULLMQ}× BullMQ on Redis (same run)`,
        measured: `${(sqlite.drain / bullmq.drain).toFixed(2)}× (${int(bullmq.drain)}/s)`,
        met: sqlite.drain >= TARGET_BULLMQ * bullmq.drain,
      });
    }
  }
}

const kindOf = (who: string) => (who === 'sqlite' || who === 'memory' ? 'ours' : 'peer');
const labelOf = (who: string) => (kindOf(who) === 'ours' ? `Offload, ${who}` : who);
const chart = (file: string, title: string, pick: (r: Rates) => number) => ({
  file,
  svg: svgBarChart({
    file,
    title,
    unit: 'tasks/s',
    bars: [...results].map(([who, r]) => ({
      label: labelOf(who),
      value: pick(r),
      note: `${int(pick(r))}/s`,
      kind: kindOf(who),
    })),
  }),
});

publish(args, {
  name: 'drain',
  markdown: [
    `### Enqueue ${int(N)} no-op tasks, then drain (enqueueMany in chunks of ${int(CHUNK)}; concurrency ${CONCURRENCY}; median of ${RUNS})`,
    '',
    'Drain is timed from `start()` until the last `task:success`; end to end from the first enqueue.',
    '',
    table(['queue', 'enqueue/s', 'drain/s', 'end to end/s', 'drain/s per run'], rows),
    '',
    ...(notes.length ? [...notes, ''] : []),
  ].join('\n'),
  checks,
  charts: [
    chart(
      'drain',
      `Drain ${int(N)} no-op tasks already queued, concurrency ${CONCURRENCY}: tasks/s (median of ${RUNS}; longer is better)`,
      (r) => r.drain,
    ),
  ],
});
