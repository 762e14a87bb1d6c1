/**
 * A/B pairs: this checkout against another (a commit before a change), measured in one run on
 * one machine. Each measurement runs in a process of its own, the two contenders alternate (ABBA),
 * and each workload reports the median of its pairs and the ratio this/base.
 *
 * Workloads, each on a fresh SQLite file:
 * - enqueue, one caller awaiting each of 20,000 (after 1,000 warm-up);
 * - enqueue, 50 concurrent callers, 100,000;
 * - drain: 100,000 no-op tasks stored in bulk, timed until every one is done in the database;
 * - notify: the built service (`npm run build` in both checkouts), 8 connections for 5 s of
 *   `POST /api/notifications/notify` on 127.0.0.1, answers per second.
 *
 *   node --conditions=source --import tsx bench/ab.ts --base=/path/to/other/checkout [--pairs=3]
 *
 * The base checkout is read as this one's layout (packages/offload, apps/service) or the single
 * package before it (src/, dist/cli/main.js).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import type * as Library from '../packages/offload/src/index.js';
import type { Logger } from '../packages/offload/src/index.js';
import type * as SqliteLibrary from '../packages/offload/src/sqlite/index.js';

const HERE = resolve(import.meta.dirname, '..');
const WORKLOADS = ['enqueue-one', 'enqueue-50', 'drain', 'notify'] as const;
type Workload = (typeof WORKLOADS)[number];

interface Tree {
  dir: string;
  /** The library's entry and its SQLite store, from the TypeScript sources. */
  entry: string;
  sqlite: string;
  /** The built service's command. */
  service: string;
}

function treeOf(dir: string): Tree {
  const workspace = existsSync(join(dir, 'packages/offload/src/index.ts'));
  return workspace
    ? {
        dir,
        entry: join(dir, 'packages/offload/src/index.ts'),
        sqlite: join(dir, 'packages/offload/src/sqlite/index.ts'),
        service: join(dir, 'apps/service/dist/main.js'),
      }
    : {
        dir,
        entry: join(dir, 'src/index.ts'),
        sqlite: join(dir, 'src/index.ts'),
        service: join(dir, 'dist/cli/main.js'),
      };
}

// ---- one measurement, in a child process -----------------------------------------------------

const SILENT: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => SILENT,
};

async function measure(workload: Workload, tree: Tree): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'offload-ab-'));
  try {
    if (workload === 'notify') return await notifyRate(tree, dir);
    const lib = (await import(pathToFileURL(tree.entry).href)) as typeof Library;
    const { sqliteStore } = (await import(pathToFileURL(tree.sqlite).href)) as typeof SqliteLibrary;
    const noop = lib.defineTask<{ i: number }>({ name: 'ab.noop', run: () => undefined });
    const runtime = lib.createRuntime({
      store: sqliteStore({ path: join(dir, 'ab.db') }),
      tasks: [noop],
      logger: SILENT,
    });
    const enqueue = async (from: number, count: number, callers: number) => {
      for (let i = from; i < from + count; i += callers) {
        await Promise.all(
          Array.from({ length: callers }, (_, k) => runtime.enqueue(noop, { i: i + k })),
        );
      }
    };
    try {
      if (workload === 'drain') {
        const N = 100_000;
        for (let i = 0; i < N; i += 1000) {
          await runtime.enqueueMany(
            Array.from({ length: 1000 }, (_, k) => ({ task: noop, payload: { i: i + k } })),
          );
        }
        const started = performance.now();
        await runtime.drain();
        return N / ((performance.now() - started) / 1000);
      }
      const callers = workload === 'enqueue-one' ? 1 : 50;
      const N = callers === 1 ? 20_000 : 100_000;
      await enqueue(0, 1000, callers);
      const started = performance.now();
      await enqueue(1000, N, callers);
      return N / ((performance.now() - started) / 1000);
    } finally {
      await runtime.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function notifyRate(tree: Tree, dir: string): Promise<number> {
  const server = spawn(process.execPath, [tree.service, 'serve'], {
    cwd: tree.dir,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      DATABASE_URL: `sqlite:${join(dir, 'service.db')}`,
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
      NOTIFY_DEMO_DELAY_MS: '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error('the service did not start')), 20_000);
      server.stdout!.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const found = /Server listening at (http:\/\/[^"\s]+)/.exec(text);
        if (found) {
          clearTimeout(timer);
          resolveUrl(found[1]!);
          server.stdout!.resume();
        }
      });
    });
    const result = await autocannon({
      url: `${url}/api/notifications/notify`,
      method: 'POST',
      connections: 8,
      duration: 5,
    });
    return result.requests.average;
  } finally {
    server.kill('SIGKILL');
  }
}

// ---- the pairs --------------------------------------------------------------------------------

function arg(name: string): string | undefined {
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

function runChild(workload: Workload, tree: string): number {
  const child = spawnSync(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      import.meta.filename,
      `--child=${workload}`,
      `--tree=${tree}`,
    ],
    { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const rate = Number(child.stdout.trim().split('\n').at(-1));
  if (child.status !== 0 || !Number.isFinite(rate)) {
    throw new Error(`${workload} in ${tree} failed (exit ${child.status}): ${child.stdout}`);
  }
  return rate;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const child = arg('child') as Workload | undefined;
if (child !== undefined) {
  const rate = await measure(child, treeOf(arg('tree')!));
  console.log(String(Math.round(rate)));
} else {
  const base = arg('base');
  if (base === undefined) throw new Error('give the other checkout with --base=DIR');
  const pairs = Number(arg('pairs') ?? 3);
  const only = arg('only')?.split(',') as Workload[] | undefined;
  console.log(`| workload | base (median) | this (median) | this/base | base runs | this runs |`);
  console.log(`| --- | ---: | ---: | ---: | --- | --- |`);
  for (const workload of only ?? WORKLOADS) {
    const rates = { base: [] as number[], this: [] as number[] };
    for (let pair = 0; pair < pairs; pair++) {
      const order = pair % 2 === 0 ? (['base', 'this'] as const) : (['this', 'base'] as const);
      for (const who of order) rates[who].push(runChild(workload, who === 'base' ? base : HERE));
    }
    const [b, t] = [median(rates.base), median(rates.this)];
    console.log(
      `| ${workload} | ${Math.round(b)}/s | ${Math.round(t)}/s | ${(t / b).toFixed(3)} | ${rates.base.join(', ')} | ${rates.this.join(', ')} |`,
    );
  }
}
