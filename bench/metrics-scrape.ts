/**
 * How long a `/metrics` scrape takes, and so holds the event loop on SQLite, whose reads are
 * synchronous, when the store holds many large tasks: 65,000 tasks with payloads of about 10 KB
 * of random text (about 650 MB), of four names, a quarter of them finished (succeeded or failed),
 * a few running, the rest queued. Each scrape renders the service's metrics with the counts read
 * afresh: the first after the store is opened again (SQLite's page cache empty, the operating
 * system's warm), then 20 more; median and slowest. PostgreSQL runs in a fresh schema of the local
 * server, dropped after, and is skipped with the reason when the server cannot be reached.
 *
 *   node --conditions=source --import tsx bench/metrics-scrape.ts [--quick] [--database=sqlite|postgres] [--tasks=N]
 *                                             [--payload=BYTES] [--json=PATH]
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { createRuntime, type Store } from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';
import type { NewTask } from '../packages/offload/src/store/store.js';
import { ServiceMetrics } from '../apps/service/src/metrics.js';
import {
  BENCH_DATABASE_URL,
  benchLogger,
  dropSchema,
  int,
  machineMarkdown,
  median,
  mib,
  parseArgs,
  postgresVersion,
  publish,
  table,
  tempDatabase,
  uniqueSchema,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
watchdog(args.quick ? 120_000 : 900_000, 'bench/metrics-scrape');

const TASKS = Number(args.values.get('tasks') ?? (args.quick ? 10_000 : 65_000));
const PAYLOAD = Number(args.values.get('payload') ?? 10_000);
const SCRAPES = args.quick ? 5 : 20;
const NAMES = ['notifications.demo', 'notifications.webhook', 'notifications.email', 'bench.big'];
/** A scrape that holds the event loop longer than this delays every request behind it. */
const TARGET_MS = 50;
const CHUNK = 500;

type Database = 'sqlite' | 'postgres';
const only = args.values.get('database');
if (only !== undefined && only !== 'sqlite' && only !== 'postgres') {
  throw new Error(`--database must be sqlite or postgres, got ${JSON.stringify(only)}`);
}
const databases: Database[] = only ? [only] : ['sqlite', 'postgres'];

interface Measured {
  database: Database;
  fillMs: number;
  size: string;
  first: number;
  median: number;
  max: number;
  counted: number;
}

/** Stores TASKS tasks and moves some of them on: claimed, then succeeded or failed. */
async function fill(store: Store): Promise<void> {
  // Random text: PostgreSQL would compress a repeated one to almost nothing.
  const filler = randomBytes(Math.ceil((PAYLOAD * 3) / 4))
    .toString('base64')
    .slice(0, PAYLOAD);
  const now = Date.now();
  for (let from = 0; from < TASKS; from += CHUNK) {
    const tasks: NewTask[] = [];
    for (let i = from; i < Math.min(TASKS, from + CHUNK); i++) {
      tasks.push({
        name: NAMES[i % NAMES.length]!,
        payload: JSON.stringify({ i, filler }),
        priority: 0,
        maxAttempts: 3,
        trace: null,
        timeout: null,
        key: null,
        group: null,
        runAt: now,
        createdAt: now,
      });
    }
    await store.enqueue(tasks);
  }
  const finish = Math.floor(TASKS / 4);
  await store.registerWorker('bench');
  for (let done = 0; done < finish + 100;) {
    const claimed = await store.claim({
      owner: 'bench',
      names: NAMES,
      limit: Math.min(1000, finish + 100 - done),
      now,
      leaseExpiresAt: now + 3_600_000,
    });
    if (claimed.length === 0) break;
    done += claimed.length;
    // The last 100 claimed stay running.
    const settled = done <= finish ? claimed : claimed.slice(0, claimed.length - (done - finish));
    await store.settle(
      settled.map((task, k) => ({
        id: task.id,
        lease: task.lease,
        state: k % 10 === 0 ? 'failed' : 'succeeded',
        at: now,
      })),
    );
  }
  await store.unregisterWorker('bench');
}

/**
 * Times `SCRAPES + 1` scrapes on `open()`, a store opened afresh. Each scrape has metrics of its
 * own, as the first scrape after the counts' reuse (5 s) ran out: it reads the counts once.
 */
async function scrapes(open: () => Store): Promise<Omit<Measured, 'database' | 'fillMs' | 'size'>> {
  const store = open();
  await store.open();
  const runtime = createRuntime({ store, tasks: [], logger: benchLogger() });
  const times: number[] = [];
  let counted = 0;
  try {
    for (let i = 0; i <= SCRAPES; i++) {
      const metrics = new ServiceMetrics({ runtime, store, processMetrics: false });
      const started = performance.now();
      const { body } = await metrics.render();
      times.push(performance.now() - started);
      metrics.close();
      counted = [...body.matchAll(/^offload_tasks\{[^}]*\} (\d+)$/gm)].reduce(
        (sum, match) => sum + Number(match[1]),
        0,
      );
    }
  } finally {
    await store.close();
  }
  const [first, ...rest] = times;
  return { first: first!, median: median(rest), max: Math.max(...rest), counted };
}

async function sqlite(): Promise<Measured> {
  const db = tempDatabase('metrics');
  try {
    const filling = sqliteStore({ path: db.path });
    await filling.open();
    const started = performance.now();
    await fill(filling);
    const fillMs = performance.now() - started;
    await filling.close();
    const measured = await scrapes(() => sqliteStore({ path: db.path }));
    return { database: 'sqlite', fillMs, size: mib(statSync(db.path).size), ...measured };
  } finally {
    db.cleanup();
  }
}

async function postgres(): Promise<Measured | string> {
  const version = await postgresVersion();
  if ('skipped' in version) return version.skipped;
  const schema = uniqueSchema('metrics');
  const open = () =>
    postgresStore({ connectionString: BENCH_DATABASE_URL, schema, logger: benchLogger() });
  try {
    const filling = open();
    await filling.open();
    const started = performance.now();
    await fill(filling);
    const fillMs = performance.now() - started;
    await filling.close();
    const measured = await scrapes(open);
    return { database: 'postgres', fillMs, size: `PostgreSQL ${version.version}`, ...measured };
  } finally {
    await dropSchema(schema);
  }
}

const results: Measured[] = [];
const skipped: string[] = [];
for (const database of databases) {
  const result = database === 'sqlite' ? await sqlite() : await postgres();
  if (typeof result === 'string') skipped.push(`${database}: skipped (${result})`);
  else results.push(result);
}

const ms = (value: number) => value.toFixed(1);
const checks: Check[] = results.map((r) => ({
  target: `${r.database}: a scrape with ${int(TASKS)} tasks of ${int(PAYLOAD)} bytes under ${TARGET_MS} ms`,
  measured: `median ${ms(r.median)} ms, slowest ${ms(r.max)} ms`,
  met: r.max < TARGET_MS,
}));
for (const r of results) {
  if (r.counted !== TASKS) throw new Error(`${r.database}: counted ${r.counted} of ${TASKS} tasks`);
}
publish(args, {
  name: 'metrics-scrape',
  checks,
  markdown: [
    `## /metrics scrape with ${int(TASKS)} tasks of ${int(PAYLOAD)} bytes`,
    '',
    machineMarkdown(),
    '',
    table(
      ['store', 'database', 'fill', 'first scrape', 'median scrape', 'slowest scrape'],
      results.map((r) => [
        r.database,
        r.size,
        `${(r.fillMs / 1000).toFixed(1)} s`,
        `${ms(r.first)} ms`,
        `${ms(r.median)} ms`,
        `${ms(r.max)} ms`,
      ]),
    ),
    ...skipped.map((line) => `\n${line}`),
  ].join('\n'),
});
