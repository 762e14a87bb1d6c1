/**
 * Shared helpers of the benchmark scripts: arguments, timing, statistics, machine information,
 * temporary databases and the result format that `bench/run.ts` collects.
 *
 * Every script prints its own Markdown section to stdout; with `--json=PATH` it also writes a
 * `BenchResult` there, which `run.ts` turns into the summary and `bench/results/latest.md`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem, type as osType, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { memoryStore, type Logger, type Store } from '../packages/offload/src/index.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';

const require = createRequire(import.meta.url);

/** `--quick`, `--json=PATH`, `--store=sqlite|memory` and any other `--key=value`. */
export interface Args {
  quick: boolean;
  json: string | undefined;
  /** Which stores to run; both unless `--store=` names one. */
  stores: ('sqlite' | 'memory')[];
  values: Map<string, string>;
}

export function parseArgs(argv: readonly string[] = process.argv.slice(2)): Args {
  const values = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match)
      throw new Error(
        `unknown argument ${JSON.stringify(arg)}; use --quick, --json=PATH, --store=sqlite|memory`,
      );
    values.set(match[1]!, match[2] ?? 'true');
  }
  const store = values.get('store');
  if (store !== undefined && store !== 'sqlite' && store !== 'memory') {
    throw new Error(`--store must be sqlite or memory, got ${JSON.stringify(store)}`);
  }
  return {
    quick: values.has('quick'),
    json: values.get('json'),
    stores: store ? [store] : ['sqlite', 'memory'],
    values,
  };
}

/** Ends the process if the script runs longer than `ms`: every benchmark stops by itself. */
export function watchdog(ms: number, what: string): void {
  setTimeout(() => {
    process.stderr.write(`${what}: did not finish within ${Math.round(ms / 1000)} s; giving up\n`);
    process.exit(3);
  }, ms).unref();
}

/** Quiet logger for the runtime: warnings and errors still reach stderr, stdout stays Markdown. */
export function benchLogger(): Logger {
  return pino({ level: 'warn', name: 'offload-bench' }, pino.destination(2));
}

/** A fresh directory for one SQLite database; `cleanup` removes it with its WAL and lock files. */
export function tempDatabase(label: string): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), `offload-bench-${label}-`));
  return {
    path: join(dir, 'tasks.db'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Nearest-rank percentile, `p` in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** Items per second over `ms` milliseconds. */
export function rate(count: number, ms: number): number {
  return (count * 1000) / ms;
}

/** `123,456` */
export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a';
}

/** `0.123` */
export function ms3(value: number): string {
  return Number.isFinite(value) ? value.toFixed(3) : 'n/a';
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MB`;
}

/** Waits until `events` callbacks were counted `count` times, or rejects after `timeoutMs`. */
export function counter(
  count: number,
  timeoutMs: number,
  what: string,
): { tick(): void; done: Promise<void>; seen(): number } {
  let seen = 0;
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(
    () => reject(new Error(`${what}: only ${seen} of ${count} after ${timeoutMs} ms`)),
    timeoutMs,
  );
  return {
    tick() {
      seen += 1;
      if (seen === count) {
        clearTimeout(timer);
        resolve();
      }
    },
    done,
    seen: () => seen,
  };
}

/** Lets pending timers and I/O run, e.g. between benchmark runs. */
export function settle(ms = 50): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function packageVersion(name: string): string {
  // Some packages do not export their package.json: read it from node_modules then.
  const paths = [
    () => require.resolve(`${name}/package.json`),
    () => fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url)),
  ];
  for (const path of paths) {
    try {
      return (JSON.parse(readFileSync(path(), 'utf8')) as { version: string }).version;
    } catch {
      // next
    }
  }
  return 'not installed';
}

export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  memory: string;
  os: string;
  node: string;
  versions: Record<string, string>;
}

export function machineInfo(): MachineInfo {
  const cpuList = cpus();
  const db = new Database(':memory:');
  const sqlite = (db.prepare('select sqlite_version() as v').get() as { v: string }).v;
  db.close();
  const own = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return {
    date: new Date().toISOString(),
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    memory: mib(totalmem()),
    os: `${osType()} ${release()}`,
    node: process.version,
    versions: {
      offload: own.version,
      'better-sqlite3': packageVersion('better-sqlite3'),
      sqlite,
      plainjob: packageVersion('plainjob'),
      pg: packageVersion('pg'),
      'graphile-worker': packageVersion('graphile-worker'),
      'pg-boss': packageVersion('pg-boss'),
      bullmq: packageVersion('bullmq'),
      ioredis: packageVersion('ioredis'),
      sidequest: packageVersion('sidequest'),
      autocannon: packageVersion('autocannon'),
      tsx: packageVersion('tsx'),
    },
  };
}

export function machineMarkdown(info: MachineInfo = machineInfo()): string {
  const versions = Object.entries(info.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return [
    `- date: ${info.date}`,
    `- machine: ${info.cpu}, ${info.cores} cores, ${info.memory} RAM, ${info.os}`,
    `- Node ${info.node}; ${versions}`,
  ].join('\n');
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** One target of an issue and what was measured against it. */
export interface Check {
  target: string;
  measured: string;
  met: boolean;
}

/** The targets as a Markdown table, then how many were met. */
export function targetsMarkdown(checks: readonly Check[]): string {
  const met = checks.filter((c) => c.met).length;
  return [
    table(
      ['target', 'measured', 'met'],
      checks.map((c) => [c.target, c.measured, c.met ? 'yes' : '**no**']),
    ),
    '',
    `${met} of ${checks.length} targets met.`,
  ].join('\n');
}

export interface BenchResult {
  name: string;
  markdown: string;
  checks: Check[];
  /** SVG charts (bench/svg.ts) that `run.ts` writes to bench/results/FILE.svg. */
  charts?: { file: string; svg: string }[];
}

/** Prints the section and, with `--json=PATH`, writes the result for `run.ts`. */
export function publish(args: Args, result: BenchResult): void {
  process.stdout.write(`${result.markdown}\n`);
  if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 2));
}

/** A fresh store of `kind`: SQLite on a temporary file (durable: WAL, synchronous NORMAL as the store sets), or memory. */
export function freshStore(kind: 'sqlite' | 'memory'): { store: Store; cleanup(): void } {
  if (kind === 'memory') return { store: memoryStore(), cleanup: () => undefined };
  const db = tempDatabase('sqlite');
  return { store: sqliteStore({ path: db.path }), cleanup: db.cleanup };
}

/** How long a probe job may take to start before the measurement fails. */
const PROBE_TIMEOUT = 5_000;

/**
 * Enqueue-to-start latency, one job at a time. The job calls `started()` on its first line and
 * its queue calls `done()` once it completed; `measure` enqueues the next job only then.
 */
export class LatencyProbe {
  private onStart: ((at: number) => void) | undefined;
  private onDone: (() => void) | undefined;

  /** For the job's first line. */
  readonly started = (): void => this.onStart?.(performance.now());
  /** For the job's completion. */
  readonly done = (): void => this.onDone?.();

  /**
   * Enqueues `warmUp + samples` jobs with `enqueue(i)` and returns the latencies of the last
   * `samples`, from just before `enqueue` to the job's first line; waits `gapMs` between jobs.
   */
  async measure(
    what: string,
    { samples, warmUp, gapMs = 0 }: { samples: number; warmUp: number; gapMs?: number },
    enqueue: (i: number) => Promise<unknown>,
  ): Promise<number[]> {
    const latencies: number[] = [];
    try {
      for (let i = 0; i < warmUp + samples; i++) {
        const started = new Promise<number>((resolve) => (this.onStart = resolve));
        const done = new Promise<void>((resolve) => (this.onDone = resolve));
        const timeout = setTimeout(() => this.onStart?.(NaN), PROBE_TIMEOUT);
        const before = performance.now();
        const enqueued = enqueue(i);
        const at = await started;
        clearTimeout(timeout);
        if (Number.isNaN(at)) {
          throw new Error(`${what}: job ${i} did not start within ${PROBE_TIMEOUT} ms`);
        }
        await enqueued;
        await done;
        if (i >= warmUp) latencies.push(at - before);
        if (gapMs > 0) await settle(gapMs);
      }
      return latencies;
    } finally {
      this.onStart = undefined;
      this.onDone = undefined;
    }
  }
}

/** The PostgreSQL server of the benchmarks: local, on loopback. */
export const BENCH_DATABASE_URL =
  process.env.OFFLOAD_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name no other run uses, e.g. `bench_http_1a2b3c4d`. */
export function uniqueSchema(label: string): string {
  return `bench_${label}_${randomBytes(4).toString('hex')}`;
}

/** Runs `work` on a fresh connection to the benchmarks' server, closed afterwards. */
export async function withPgClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await withPgClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

/** The server's version, or the reason it cannot be reached (a peer reports it as skipped). */
export async function postgresVersion(): Promise<{ version: string } | { skipped: string }> {
  try {
    return await withPgClient(async (client) => {
      const { rows } = await client.query<{ v: string }>(
        "SELECT current_setting('server_version') AS v",
      );
      return { version: rows[0]!.v };
    });
  } catch (error) {
    return { skipped: `PostgreSQL at ${BENCH_DATABASE_URL}: ${(error as Error).message}` };
  }
}
