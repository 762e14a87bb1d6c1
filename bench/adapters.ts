/**
 * What the adapters cost: per framework (node:http, Express, Hono, Fastify), a route that
 * schedules one task through Offload's adapter against the same route written by hand, which
 * awaits `runtime.enqueue` before it answers. Same framework, a SQLite store each (temp files),
 * the runtime started in both so that the tasks run in the server; each server is a child process
 * of its own (bench/adapters-server.ts) that loads the library as built (`npm run build` first).
 *
 * The servers of one framework run side by side, pinned to core 0 when there are two cores and
 * `taskset`; the load (autocannon, 50 connections, closed loop) comes from this process, pinned
 * to core 1. After a warm-up of each, the variants take turns, in rotating order: a burst on one
 * server, then a wait until every task of that burst has run, so that the next burst meets no
 * backlog. Many short turns rather than a few long runs, because on a shared machine requests/s
 * move with the neighbours' load; the medians of the turns are compared.
 *
 * A third variant, `unhinted`, is the adapter on a runtime that is not told of answered requests:
 * its draining tasks do not yield to the requests (scheduler.ts, SERVING_WINDOW), which parts the
 * adapter's own cost from that policy's. Each turn also counts the server's CPU time per request,
 * its task's run included.
 *
 * Target: the adapter keeps at least 95% of the hand-written route's requests/s.
 *
 *   node --conditions=source --import tsx bench/adapters.ts [--quick] [--json=PATH]
 *                       [--only=node,express,hono,fastify] [--turns=N] [--seconds=S]
 *                       [--profile=DIR]   (servers run with --cpu-prof into DIR/<framework>-<variant>)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { AdapterServerStats, Framework, Variant } from './adapters-server.js';
import {
  int,
  machineMarkdown,
  median,
  parseArgs,
  publish,
  table,
  targetsMarkdown,
  tempDatabase,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
const quick = args.quick;
const FRAMEWORKS = (args.values.get('only')?.split(',') ?? [
  'node',
  'express',
  'hono',
  'fastify',
]) as Framework[];
const TURNS = Number(args.values.get('turns') ?? (quick ? 2 : 9));
const SECONDS = Number(args.values.get('seconds') ?? (quick ? 1 : 3));
const WARM_UP = quick ? 1 : 3;
const profileDir = args.values.get('profile');
const CONNECTIONS = 50;
const TARGET = 0.95;
const VARIANTS: Variant[] = ['adapter', 'manual', 'unhinted'];
const PATH = '/api/notifications/notify';
watchdog(quick ? 300_000 : 2_400_000, 'bench/adapters');

const here = fileURLToPath(new URL('.', import.meta.url));
const pinned = cpus().length >= 2 && spawnSync('taskset', ['-V']).status === 0;
if (pinned) spawnSync('taskset', ['-p', '-c', '1', String(process.pid)]);

// The servers load the library as built (see adapters-server.ts): build it from the sources.
const build = spawnSync('npm', ['run', 'build', '-w', 'packages/offload'], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (build.status !== 0) throw new Error('npm run build failed: the adapters cannot be measured');

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

interface Server {
  url: string;
  stats(): Promise<AdapterServerStats>;
  stop(): Promise<void>;
}

async function startServer(framework: Framework, variant: Variant): Promise<Server> {
  const db = tempDatabase(`adapters-${framework}-${variant}`);
  const profile = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, `${framework}-${variant}`)}`]
    : [];
  const argv = [
    ...profile,
    '--conditions=source',
    '--import',
    'tsx',
    join(here, 'adapters-server.ts'),
    `--framework=${framework}`,
    `--variant=${variant}`,
  ];
  const options = {
    stdio: ['ignore', 2, 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc' | number)[],
    env: { ...process.env, DATABASE_PATH: db.path },
  };
  const child = pinned
    ? spawn('taskset', ['-c', '0', process.execPath, ...argv], options)
    : spawn(process.execPath, argv, options);
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${framework} ${variant}: not ready`)), 30_000);
    child.once('message', (message: { url: string }) => {
      clearTimeout(timer);
      resolve(message.url);
    });
    child.once('exit', (code) => reject(new Error(`${framework} ${variant}: exited ${code}`)));
  });
  return {
    url,
    stats: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no stats from the server')), 10_000);
        const listen = (message: { type: string }) => {
          if (message.type !== 'stats') return;
          clearTimeout(timer);
          child.off('message', listen);
          resolve(message as AdapterServerStats);
        };
        child.on('message', listen);
        child.send({ type: 'stats' });
      }),
    async stop() {
      child.send({ type: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      db.cleanup();
    },
  };
}

/** Waits until every task the server's requests scheduled has run; resolves with its stats. */
async function drained(server: Server): Promise<AdapterServerStats> {
  for (let waited = 0; ; waited += 50) {
    const stats = await server.stats();
    if (stats.succeeded >= stats.requests) return stats;
    if (waited > 60_000) throw new Error(`${server.url}: tasks still queued after 60 s`);
    await sleep(50);
  }
}

function burst(url: string, seconds: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      { url: `${url}${PATH}`, method: 'POST', connections: CONNECTIONS, duration: seconds },
      (error, result) => (error ? reject(error as Error) : resolve(result)),
    );
  });
}

interface Turn {
  rps: number;
  p99: number;
  failed: number;
  /** Server CPU time per request of the burst, its task's run included, µs. */
  cpu: number;
}

const turns = new Map<string, Turn[]>();
for (const framework of FRAMEWORKS) {
  const servers = new Map<Variant, Server>();
  for (const variant of VARIANTS) servers.set(variant, await startServer(framework, variant));
  try {
    for (const server of servers.values()) {
      await burst(server.url, WARM_UP);
      await drained(server);
    }
    for (let turn = 0; turn < TURNS; turn++) {
      for (let i = 0; i < VARIANTS.length; i++) {
        const variant = VARIANTS[(i + turn) % VARIANTS.length]!;
        const server = servers.get(variant)!;
        const before = await drained(server);
        const result = await burst(server.url, SECONDS);
        const after = await drained(server);
        const measured: Turn = {
          rps: result['2xx'] / result.duration,
          p99: result.latency.p99,
          failed: result.non2xx + result.errors + result.timeouts,
          cpu: (after.cpuMicros - before.cpuMicros) / (after.requests - before.requests),
        };
        const key = `${framework} ${variant}`;
        turns.set(key, [...(turns.get(key) ?? []), measured]);
        process.stderr.write(
          `${key} turn ${turn + 1}: ${int(measured.rps)} req/s, p99 ${measured.p99} ms, ${measured.cpu.toFixed(1)} µs CPU/request, failed ${measured.failed}\n`,
        );
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  }
}

const rows: string[][] = [];
const checks: Check[] = [];
const pct = (value: number) => `${(value * 100).toFixed(1)}%`;
for (const framework of FRAMEWORKS) {
  const of = (variant: Variant) => turns.get(`${framework} ${variant}`)!;
  const rps = (variant: Variant) => median(of(variant).map((t) => t.rps));
  const p99 = (variant: Variant) => median(of(variant).map((t) => t.p99));
  const cpu = (variant: Variant) => median(of(variant).map((t) => t.cpu));
  const failed = (variant: Variant) => of(variant).reduce((sum, t) => sum + t.failed, 0);
  const ratio = rps('adapter') / rps('manual');
  rows.push([
    framework,
    int(rps('adapter')),
    int(rps('manual')),
    pct(ratio),
    `${cpu('adapter').toFixed(1)} / ${cpu('manual').toFixed(1)}`,
    `${p99('adapter')} / ${p99('manual')}`,
    `${int(rps('unhinted'))} (${pct(rps('unhinted') / rps('manual'))}), ${cpu('unhinted').toFixed(1)} µs`,
    VARIANTS.map(failed).join(' / '),
  ]);
  checks.push({
    target: `${framework}: the adapter keeps ≥ ${TARGET * 100}% of the hand-written route's requests/s`,
    measured: pct(ratio),
    met: ratio >= TARGET,
  });
}

publish(args, {
  name: 'adapters',
  checks,
  markdown: [
    '## Adapters: one task a request, through the adapter or by hand',
    '',
    machineMarkdown(),
    `- ${CONNECTIONS} connections, closed loop; per framework ${TURNS} turns of ${SECONDS} s per variant in rotating order after a ${WARM_UP} s warm-up, medians; SQLite on temp files${pinned ? '; servers on core 0, load on core 1' : ''}`,
    '',
    table(
      [
        'framework',
        'adapter req/s',
        'by hand req/s',
        'adapter / by hand',
        'CPU µs a request, task included (adapter / by hand)',
        'p99 ms (adapter / by hand)',
        'unhinted adapter: req/s (/ by hand), CPU',
        'failed (adapter / by hand / unhinted)',
      ],
      rows,
    ),
    '',
    targetsMarkdown(checks),
  ].join('\n'),
});
process.exit(0);
