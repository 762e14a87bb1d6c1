/**
 * The dashboard on a large store: with 1,000,000 tasks in SQLite and in PostgreSQL, how long the
 * overview and task-list pages take (p50, p95, over HTTP on loopback through the Node handler),
 * how long one uncached count of the tasks takes (`runtime.stats()`), and the plan of the count.
 * Then the cost of live updates: the service's notify throughput with and without a connected
 * dashboard SSE client, A/B in one run, alternating.
 *
 * The tasks are bulk-inserted straight into the store's table in SQL (a recursive CTE in SQLite,
 * generate_series in PostgreSQL), after the store created its schema: enqueueing a million tasks
 * one batch at a time would take most of the run. They are spread over 8 names and the five
 * states (70% succeeded, 10% failed, 5% canceled, 14% queued, 1% running), with small payloads.
 *
 *   node --conditions=source --import tsx bench/dashboard.ts [--quick] [--tasks=N]
 *                    [--database=sqlite|postgres] [--json=PATH]
 */
import { request as httpRequest, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import type { QueryResult } from 'pg';
import { createRuntime, type Runtime, type Store } from '../packages/offload/src/index.js';
import { createDashboard } from '../packages/offload/src/dashboard/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import { buildSql } from '../packages/offload/src/postgres/sql.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';
import {
  benchLogger,
  BENCH_DATABASE_URL,
  dropSchema,
  int,
  machineMarkdown,
  median,
  parseArgs,
  percentile,
  postgresVersion,
  publish,
  table,
  targetsMarkdown,
  tempDatabase,
  uniqueSchema,
  watchdog,
  withPgClient,
  type Check,
} from './lib.js';
import { drainAb, notifyAb, type AbResult } from './dashboard-live.js';

const args = parseArgs();
watchdog(args.quick ? 300_000 : 1_500_000, 'bench/dashboard');

const TASKS = Number(args.values.get('tasks') ?? (args.quick ? 100_000 : 1_000_000));
const REQUESTS = args.quick ? 100 : 300;
const TARGET_MS = 50;
const NAMES = 8;

type Kind = 'sqlite' | 'postgres';
const only = args.values.get('database');
const kinds: Kind[] = only === 'sqlite' || only === 'postgres' ? [only] : ['sqlite', 'postgres'];

/** The state of row `i` (a SQL expression over `i`), as the header says. */
const STATE_SQL = `CASE WHEN i % 100 < 70 THEN 'succeeded' WHEN i % 100 < 80 THEN 'failed'
  WHEN i % 100 < 85 THEN 'canceled' WHEN i % 100 < 99 THEN 'queued' ELSE 'running' END`;

function sqliteFill(path: string, now: number): void {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${TASKS})
      INSERT INTO offload_tasks (id, name, payload, state, attempts, max_attempts, run_at,
        created_at, started_at, finished_at, errors, lease_owner, lease_expires_at)
      SELECT i, 'bench.task' || (i % ${NAMES}), '{"i":' || i || ',"to":"someone@example.com"}', s,
        CASE WHEN s = 'queued' THEN 0 ELSE 1 END, 3, ${now} - (${TASKS} - i) * 10,
        ${now} - (${TASKS} - i) * 10,
        CASE WHEN s = 'queued' THEN NULL ELSE ${now} END,
        CASE WHEN s IN ('succeeded', 'failed', 'canceled') THEN ${now} - (${TASKS} - i) * 5 END,
        CASE WHEN s = 'failed' THEN '[{"attempt":1,"at":${now},"name":"Error","message":"boom","stack":null}]' ELSE '[]' END,
        CASE WHEN s = 'running' THEN 'bench-gone' END,
        CASE WHEN s = 'running' THEN ${now + 3_600_000} END
      FROM (SELECT i, ${STATE_SQL} AS s FROM n)`);
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
}

async function postgresFill(schema: string, now: number): Promise<void> {
  await withPgClient(async (client) => {
    await client.query(`INSERT INTO "${schema}".tasks (id, name, payload, state, attempts,
        max_attempts, run_at, created_at, started_at, finished_at, errors, lease_owner,
        lease_expires_at)
      SELECT i, 'bench.task' || (i % ${NAMES}), '{"i":' || i || ',"to":"someone@example.com"}', s,
        CASE WHEN s = 'queued' THEN 0 ELSE 1 END, 3, ${now} - (${TASKS} - i) * 10,
        ${now} - (${TASKS} - i) * 10,
        CASE WHEN s = 'queued' THEN NULL ELSE ${now} END,
        CASE WHEN s IN ('succeeded', 'failed', 'canceled') THEN ${now} - (${TASKS} - i) * 5 END,
        CASE WHEN s = 'failed' THEN '[{"attempt":1,"at":${now},"name":"Error","message":"boom","stack":null}]'::jsonb ELSE '[]'::jsonb END,
        CASE WHEN s = 'running' THEN 'bench-gone' END,
        CASE WHEN s = 'running' THEN ${now + 3_600_000}::bigint END
      FROM (SELECT i, ${STATE_SQL} AS s FROM generate_series(1, ${TASKS}) AS i) AS rows`);
    await client.query(
      `SELECT setval(pg_get_serial_sequence('"${schema}".tasks', 'id'), ${TASKS})`,
    );
    await client.query(`VACUUM ANALYZE "${schema}".tasks`);
  });
}

interface Measured {
  kind: Kind;
  fillMs: number;
  stats: number[];
  pages: { page: string; p50: number; p95: number; max: number }[];
  plan: string;
}

const PAGES = [
  ['overview', '/dashboard'],
  ['tasks, newest', '/dashboard/tasks'],
  ['tasks, failed', '/dashboard/tasks?state=failed'],
  ['tasks, one name', '/dashboard/tasks?name=bench.task3'],
  ['tasks, page 2', ''],
] as const;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

async function measure(
  kind: Kind,
  runtime: Runtime,
  fillMs: number,
  plan: string,
): Promise<Measured> {
  const stats: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await runtime.stats();
    stats.push(performance.now() - started);
  }
  const mounted = createDashboard({ runtime, login: false });
  const server: Server = createServer(mounted.node);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const pages: Measured['pages'] = [];
  try {
    const first = await get(`${base}/dashboard/tasks`);
    const next = /href="(\/dashboard\/tasks\?cursor=[^"]+)" rel="next"/
      .exec(first.body)?.[1]
      ?.replaceAll('&amp;', '&');
    for (const [page, path] of PAGES) {
      const url = `${base}${path || next}`;
      const times: number[] = [];
      for (let i = 0; i < REQUESTS; i++) {
        const started = performance.now();
        const { status } = await get(url);
        times.push(performance.now() - started);
        if (status !== 200) throw new Error(`${url} answered ${status}`);
      }
      pages.push({ page, p50: median(times), p95: percentile(times, 95), max: Math.max(...times) });
    }
  } finally {
    server.close();
    mounted.close();
  }
  return { kind, fillMs, stats, pages, plan };
}

async function sqlite(): Promise<Measured> {
  const db = tempDatabase('dashboard');
  try {
    const setup = sqliteStore({ path: db.path });
    await setup.open();
    await setup.close();
    const started = performance.now();
    sqliteFill(db.path, Date.now());
    const fillMs = performance.now() - started;
    const plan = sqlitePlan(db.path);
    const store = sqliteStore({ path: db.path });
    const runtime = createRuntime({ store, tasks: [], logger: benchLogger() });
    try {
      return await measure('sqlite', runtime, fillMs, plan);
    } finally {
      await runtime.stop();
    }
  } finally {
    db.cleanup();
  }
}

/** SQLite's plan of the count statement: which indexes it reads. */
function sqlitePlan(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const counts = db
      .prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'offload_tasks'")
      .get();
    void counts;
    const sql = `SELECT name, 'queued', count(*) FROM offload_tasks INDEXED BY offload_tasks_claim
      WHERE state = 'queued' AND group_key IS NULL GROUP BY name`;
    const rows = db.prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all();
    const done = db
      .prepare<[], { detail: string }>(
        `EXPLAIN QUERY PLAN SELECT name, state, count(*) FROM offload_tasks INDEXED BY offload_tasks_done
         WHERE state = 'succeeded' OR state = 'failed' OR state = 'canceled' GROUP BY state, name`,
      )
      .all();
    return [...rows, ...done].map((r) => r.detail).join('; ');
  } finally {
    db.close();
  }
}

async function postgres(): Promise<Measured | string> {
  const version = await postgresVersion();
  if ('skipped' in version) return version.skipped;
  const schema = uniqueSchema('dashboard');
  const open = (): Store => postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
  try {
    const setup = open();
    await setup.open();
    await setup.close();
    const started = performance.now();
    await postgresFill(schema, Date.now());
    const fillMs = performance.now() - started;
    const plan = await withPgClient(async (client) => {
      const { counts, countsFromIndexes } = buildSql(schema);
      const results = (await client.query(
        countsFromIndexes.replace(counts, `EXPLAIN ${counts}`),
      )) as unknown as QueryResult<{ 'QUERY PLAN': string }>[];
      return results
        .at(-1)!
        .rows.map((r) => r['QUERY PLAN'].trim())
        .filter((line) => line.includes(' Scan '))
        .join(' / ');
    });
    const runtime = createRuntime({ store: open(), tasks: [], logger: benchLogger() });
    try {
      return await measure('postgres', runtime, fillMs, plan);
    } finally {
      await runtime.stop();
    }
  } finally {
    await dropSchema(schema);
  }
}

const results: (Measured | string)[] = [];
for (const kind of kinds) results.push(kind === 'sqlite' ? await sqlite() : await postgres());
const ab: AbResult = await notifyAb(args.quick);
const drained = await drainAb(args.quick);

const checks: Check[] = [];
const sections: string[] = [];
for (const result of results) {
  if (typeof result === 'string') {
    sections.push(`PostgreSQL skipped: ${result}`);
    continue;
  }
  for (const { page, p95 } of result.pages) {
    checks.push({
      target: `${result.kind}, ${int(TASKS)} tasks: ${page} p95 < ${TARGET_MS} ms`,
      measured: `${p95.toFixed(1)} ms`,
      met: p95 < TARGET_MS,
    });
  }
  sections.push(
    [
      `### ${result.kind}: ${int(TASKS)} tasks (bulk insert ${(result.fillMs / 1000).toFixed(1)} s)`,
      '',
      table(
        ['page', 'p50 (ms)', 'p95 (ms)', 'max (ms)'],
        result.pages.map((p) => [p.page, p.p50.toFixed(1), p.p95.toFixed(1), p.max.toFixed(1)]),
      ),
      '',
      `One uncached count of the tasks (runtime.stats()): median ${median(result.stats).toFixed(1)} ms, max ${Math.max(...result.stats).toFixed(1)} ms. The dashboard reuses a count for 1 s, or 100 times as long as it took when that is longer; the first overview of a process waits for one.`,
      '',
      `Plan of the count: ${result.plan}`,
    ].join('\n'),
  );
}
checks.push({
  target: 'live updates cost < 2% of the runtime CPU per task (memory store, drain)',
  measured: `${drained.costPercent.toFixed(2)}% (${drained.without.toFixed(2)} vs ${drained.with.toFixed(2)} µs)`,
  met: drained.costPercent < 2,
});
checks.push({
  target: 'live updates cost < 2% of notify throughput',
  measured: `${ab.costPercent.toFixed(2)}% (${int(ab.without)} vs ${int(ab.with)} req/s); CPU per request ${ab.cpuCostPercent.toFixed(2)}%`,
  met: ab.costPercent < 2,
});

publish(args, {
  name: 'dashboard',
  checks,
  markdown: [
    '## Dashboard',
    '',
    machineMarkdown(),
    '',
    ...sections.flatMap((s) => [s, '']),
    '### Live updates and notify throughput',
    '',
    ab.markdown,
    '',
    drained.markdown,
    '',
    targetsMarkdown(checks),
  ].join('\n'),
});
