/**
 * What group limits cost a drain. N no-op tasks without a group are enqueued, then the runtime
 * starts and is timed until every one has succeeded, on SQLite and on PostgreSQL, concurrency 100:
 *
 * - `plain`: those N tasks alone;
 * - `other-keys`: the same N, while 100 other group keys (concurrency 1, a rate) hold 10 queued
 *   tasks each and are throttled for an hour: every claim meets them and must pass them by;
 * - `keys-10k`: N tasks spread over 10,000 distinct group keys (concurrency 5, so that none is
 *   held back): every claim visits keys.
 *
 * Each run is a child process of its own with a fresh database; the contenders alternate within
 * each round, and the medians of the rounds are reported.
 *
 *   node --conditions=source --import tsx bench/limits.ts [--quick] [--store=sqlite|postgres] [--json=PATH]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  createRuntime,
  defineTask,
  HOUR,
  SECOND,
  type Store,
  type TaskRequest,
} from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';
import {
  BENCH_DATABASE_URL,
  benchLogger,
  counter,
  dropSchema,
  int,
  median,
  parseArgs,
  publish,
  rate,
  table,
  targetsMarkdown,
  tempDatabase,
  uniqueSchema,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs(process.argv.slice(2).filter((arg) => !arg.startsWith('--store=')));
const storeArg = process.argv.find((arg) => arg.startsWith('--store='))?.slice('--store='.length);
const child = args.values.get('child');
const quick = args.quick;

const KINDS = ['sqlite', 'postgres'] as const;
type Kind = (typeof KINDS)[number];
const CONTENDERS = ['plain', 'other-keys', 'keys-10k'] as const;
type Contender = (typeof CONTENDERS)[number];

const N: Record<Kind, number> = quick
  ? { sqlite: 20_000, postgres: 5_000 }
  : { sqlite: 50_000, postgres: 20_000 };
const CHUNK = 1_000;
const CONCURRENCY = 100;
const RUNS = quick ? 1 : 3;
const OTHER_KEYS = 100;
const TASKS_PER_OTHER_KEY = 10;
const DISTINCT_KEYS = 10_000;
const RUN_TIMEOUT = 240_000;
/** The targets: limits on other keys keep 95% of the drain, 10,000 active keys 80%. */
const TARGETS: Record<Exclude<Contender, 'plain'>, number> = {
  'other-keys': 0.95,
  'keys-10k': 0.8,
};

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

// ---------------------------------------------------------------------------------------------
// The children: one drain each.

function openStore(kind: Kind): { store: Store; cleanup(): Promise<void> } {
  if (kind === 'sqlite') {
    const db = tempDatabase('limits');
    return { store: sqliteStore({ path: db.path }), cleanup: async () => db.cleanup() };
  }
  const schema = uniqueSchema('limits');
  return {
    store: postgresStore({ connectionString: BENCH_DATABASE_URL, schema }),
    cleanup: () => dropSchema(schema),
  };
}

/** The drain rate of `n` tasks, tasks/s. */
async function drain(kind: Kind, contender: Contender): Promise<number> {
  const n = N[kind];
  const { store, cleanup } = openStore(kind);
  const runtime = createRuntime({
    store,
    tasks: [noop],
    concurrency: CONCURRENCY,
    logger: benchLogger(),
  });
  const successes = counter(n, RUN_TIMEOUT, `${contender} drain on ${kind}`);
  runtime.on('task:success', successes.tick);
  try {
    await store.open(); // migrations, outside the timing
    if (contender === 'other-keys') {
      const blocked: TaskRequest[] = [];
      for (let k = 0; k < OTHER_KEYS; k++) {
        const group = { key: `other:${k}`, concurrency: 1, rate: { max: 10, period: SECOND } };
        for (let j = 0; j < TASKS_PER_OTHER_KEY; j++)
          blocked.push({ task: noop, payload: { i: -1 }, options: { group } });
        await runtime.throttle(group.key, HOUR);
      }
      await runtime.enqueueMany(blocked);
    }
    for (let from = 0; from < n; from += CHUNK) {
      const chunk: TaskRequest[] = [];
      for (let i = from; i < Math.min(n, from + CHUNK); i++) {
        const options =
          contender === 'keys-10k'
            ? { group: { key: `key:${i % DISTINCT_KEYS}`, concurrency: 5 } }
            : undefined;
        chunk.push({ task: noop, payload: { i }, ...(options ? { options } : {}) });
      }
      await runtime.enqueueMany(chunk);
    }
    const t0 = performance.now();
    await runtime.start();
    await successes.done;
    return rate(n, performance.now() - t0);
  } finally {
    await runtime.stop();
    await cleanup();
  }
}

type Outcome = { ok: true; rate: number } | { ok: false; error: string };

async function runChild(spec: string): Promise<void> {
  watchdog(RUN_TIMEOUT + 30_000, `bench/limits (${spec})`);
  const [kind, contender] = spec.split(':') as [Kind, Contender];
  let outcome: Outcome;
  try {
    outcome = { ok: true, rate: await drain(kind, contender) };
  } catch (error) {
    outcome = { ok: false, error: (error as Error).message.split('\n')[0]! };
  }
  process.send!(outcome, () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// The parent: alternates the contenders, prints the section.

function forkRun(kind: Kind, contender: Contender): Promise<Outcome> {
  const script = fileURLToPath(import.meta.url);
  const proc = fork(script, [`--child=${kind}:${contender}`, ...(quick ? ['--quick'] : [])], {
    execArgv: ['--conditions=source', '--import', 'tsx'],
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

async function main(): Promise<void> {
  watchdog(quick ? 600_000 : 1_800_000, 'bench/limits');
  if (storeArg !== undefined && !(KINDS as readonly string[]).includes(storeArg))
    throw new Error(`--store must be sqlite or postgres, got ${JSON.stringify(storeArg)}`);
  const kinds = storeArg ? [storeArg as Kind] : [...KINDS];
  const rates = new Map<string, number[]>();
  const failed = new Map<string, string>();
  for (let round = 0; round < RUNS; round++) {
    for (const kind of kinds) {
      for (const contender of CONTENDERS) {
        const label = `${kind}:${contender}`;
        if (failed.has(label)) continue;
        process.stderr.write(`limits: ${label}, run ${round + 1} of ${RUNS}…\n`);
        const outcome = await forkRun(kind, contender);
        if (outcome.ok) (rates.get(label) ?? rates.set(label, []).get(label)!).push(outcome.rate);
        else failed.set(label, outcome.error);
      }
    }
  }
  const rows: string[][] = [];
  const checks: Check[] = [];
  for (const kind of kinds) {
    const plain = median(rates.get(`${kind}:plain`) ?? []);
    for (const contender of CONTENDERS) {
      const label = `${kind}:${contender}`;
      const runs = rates.get(label);
      if (!runs) {
        rows.push([kind, contender, `skipped: ${failed.get(label) ?? 'no run'}`, '', '']);
        continue;
      }
      const value = median(runs);
      const share = value / plain;
      rows.push([
        kind,
        contender,
        int(value),
        contender === 'plain' ? '100%' : `${Math.round(share * 100)}%`,
        runs.map(int).join(', '),
      ]);
      if (contender !== 'plain') {
        const target = TARGETS[contender];
        checks.push({
          target: `${kind}: ${contender} drain ≥ ${target * 100}% of plain`,
          measured: `${Math.round(share * 100)}%`,
          met: share >= target,
        });
      }
    }
  }
  const markdown = [
    `### Group limits: drain of N no-op tasks (N = ${int(N.sqlite)} on SQLite, ${int(N.postgres)} on PostgreSQL; concurrency ${CONCURRENCY}; median of ${RUNS})`,
    '',
    table(['store', 'contender', 'drain (tasks/s)', 'of plain', 'runs'], rows),
    '',
    `other-keys: ${OTHER_KEYS} keys of ${TASKS_PER_OTHER_KEY} tasks each, throttled; keys-10k: the N tasks over ${int(DISTINCT_KEYS)} keys, concurrency 5 each.`,
    '',
    targetsMarkdown(checks),
  ].join('\n');
  publish(args, { name: 'limits', markdown, checks });
}

if (child) await runChild(child);
else await main();
