/**
 * `npm run soak`: many tasks through the service over real HTTP (the demo notification with
 * NOTIFY_DEMO_DELAY_MS=0 and the log channel, half each), sampling the server process from the
 * outside every few seconds: resident memory (/proc/PID/status VmRSS), open file descriptors
 * (/proc/PID/fd) and threads; and, through a test-only probe loaded with --import, heap after GC
 * and active timers and handles. Fails unless they stay flat after the warm-up.
 *
 *   npm run soak -- [--tasks=1000000] [--concurrency=32] [--every=5] [--deadline=60]
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLI, ROOT, tempDir } from '../apps/service/test/fixtures/service-harness.js';
import { parseArgs } from './lib.js';

const { values } = parseArgs();
const TASKS = Number(values.get('tasks') ?? 1_000_000);
const CONCURRENCY = Number(values.get('concurrency') ?? 32);
const EVERY = Number(values.get('every') ?? 5) * 1000;
/** Samples before this share of the tasks are the warm-up. */
const WARM_UP = 0.1;
/** The whole run may take this long; then it fails and stops. */
const DEADLINE = Number(values.get('deadline') ?? 60) * 60_000;

interface Sample {
  /** Under load, or after it (drained, no client connection). */
  phase: 'load' | 'idle';
  seconds: number;
  done: number;
  rssMb: number;
  fds: number;
  threads: number;
  heapMb: number | null;
  timers: number | null;
  handles: number | null;
}

const temp = tempDir();
const probeFile = join(temp.dir, 'probe.jsonl');
const port = await freePort();
const child = spawn(
  process.execPath,
  [
    '--expose-gc',
    '--conditions=source',
    '--import',
    'tsx',
    '--import',
    join(ROOT, 'bench/soak-probe.ts'),
    CLI,
    'serve',
  ],
  {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${join(temp.dir, 'soak.db')}`,
      NOTIFY_DEMO_DELAY_MS: '0',
      LOG_LEVEL: 'info',
      SOAK_PROBE_FILE: probeFile,
    },
    // The info lines (two per demo task, one per log delivery) go nowhere: 1 M tasks write ~300 MB.
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
let stderr = '';
child
  .stderr!.setEncoding('utf8')
  .on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
const exited = new Promise<never>((_, reject) =>
  child.once('exit', (code, signal) =>
    reject(new Error(`the service exited (${code ?? signal}) during the soak:\n${stderr}`)),
  ),
);
exited.catch(() => undefined);
const watchdog = setTimeout(() => {
  console.log(`FAILED: the soak ran past ${DEADLINE / 60_000} minutes`);
  child.kill('SIGKILL');
  temp.remove();
  process.exit(1);
}, DEADLINE);

const url = `http://127.0.0.1:${port}`;
const samples: Sample[] = [];
let done = 0;
let refused = 0;
const started = performance.now();
try {
  await Promise.race([ready(), exited]);
  console.log(`# soak: ${TASKS} tasks, concurrency ${CONCURRENCY}, server pid ${child.pid}`);
  console.log('| s | tasks | RSS MB | fds | threads | heap after GC MB | timers | handles |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  await sample('idle');
  const sampler = setInterval(() => void sample('load'), EVERY);
  await Promise.race([load(), exited]);
  await Promise.race([drained(), exited]);
  clearInterval(sampler);
  await sample('idle');
  const states = await taskStates();
  console.log(`# tasks in the store by state: ${JSON.stringify(states)}`);
  if (states.succeeded !== TASKS) {
    console.log(`FAILED: ${states.succeeded ?? 0} of ${TASKS} tasks succeeded`);
    process.exitCode = 1;
  }
  report();
} finally {
  clearTimeout(watchdog);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  temp.remove();
}

async function load(): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const lane = async () => {
    while (next < TASKS) {
      const n = next++;
      const body =
        n % 2 === 0 ? '' : JSON.stringify({ channel: 'log', to: 'ops', subject: `soak ${n}` });
      const status = await post(agent, body);
      if (status === 200) done += 1;
      else refused += 1;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  agent.destroy();
  if (refused > 0) throw new Error(`${refused} requests were not answered 200`);
}

function post(agent: http.Agent, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}/api/notifications/notify`, {
      method: 'POST',
      agent,
      headers: body === '' ? {} : { 'content-type': 'application/json' },
      timeout: 30_000,
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 30 s')));
    request.on('error', reject);
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.end(body);
  });
}

/** Waits (polling, with a deadline) until no task is queued or running. */
async function drained(): Promise<void> {
  const deadline = performance.now() + 10 * 60_000;
  for (;;) {
    let busy = 0;
    for (const state of ['queued', 'running']) {
      const answer = (await (await fetch(`${url}/api/tasks?state=${state}&limit=1`)).json()) as {
        tasks: unknown[];
      };
      busy += answer.tasks.length;
    }
    if (busy === 0) return;
    if (performance.now() > deadline) throw new Error('the queue did not drain within 10 minutes');
    await sleep(200);
  }
}

/** Tasks by state, from the service's /metrics (`offload_tasks{name,state}`). */
async function taskStates(): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const states: Record<string, number> = {};
  for (const [, state, count] of text.matchAll(
    /^offload_tasks\{[^}]*state="(\w+)"[^}]*\} (\d+)$/gm,
  ))
    states[state!] = (states[state!] ?? 0) + Number(count);
  return states;
}

async function ready(): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`the service did not start:\n${stderr}`);
    await sleep(100);
  }
}

async function sample(phase: Sample['phase']): Promise<void> {
  const pid = child.pid!;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  const probe = await probeOnce();
  const entry: Sample = {
    phase,
    seconds: Math.round((performance.now() - started) / 1000),
    done,
    rssMb: field('VmRSS') / 1024,
    fds,
    threads: field('Threads'),
    heapMb: probe ? probe.heapUsed / 2 ** 20 : null,
    timers: probe ? (probe.resources.Timeout ?? 0) : null,
    handles: probe
      ? Object.entries(probe.resources)
          .filter(([type]) => type !== 'Timeout')
          .reduce((sum, [, count]) => sum + count, 0)
      : null,
  };
  samples.push(entry);
  console.log(
    `| ${entry.seconds}${phase === 'idle' ? ' (idle)' : ''} | ${entry.done} | ${entry.rssMb.toFixed(1)} | ${entry.fds} | ${entry.threads} | ${entry.heapMb?.toFixed(1) ?? '–'} | ${entry.timers ?? '–'} | ${entry.handles ?? '–'} |`,
  );
}

/** Asks the probe for one line and waits (polling, bounded) until it is written. */
async function probeOnce(): Promise<{
  heapUsed: number;
  resources: Record<string, number>;
} | null> {
  const before = existsSync(probeFile) ? readFileSync(probeFile, 'utf8').length : 0;
  child.kill('SIGUSR2');
  const deadline = performance.now() + 3000;
  while (performance.now() < deadline) {
    const text = existsSync(probeFile) ? readFileSync(probeFile, 'utf8') : '';
    if (text.length > before && text.endsWith('\n')) {
      return JSON.parse(text.slice(before).trim().split('\n').at(-1)!) as {
        heapUsed: number;
        resources: Record<string, number>;
      };
    }
    await sleep(20);
  }
  return null;
}

function report(): void {
  const seconds = (performance.now() - started) / 1000;
  const loaded = samples.filter((s) => s.phase === 'load');
  const warm = loaded.find((s) => s.done >= TASKS * WARM_UP) ?? loaded[0]!;
  const lastLoaded = loaded.at(-1)!;
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const max = (pick: (s: Sample) => number) => Math.max(...samples.map(pick));
  console.log(
    `\n# ${done} tasks in ${seconds.toFixed(0)} s (${(done / seconds).toFixed(0)}/s), every one answered 200 and ran`,
  );
  console.log('| | idle at start | after warm-up | last under load | idle at end | max |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  const row = (name: string, pick: (s: Sample) => number, digits = 0) =>
    console.log(
      `| ${name} | ${[first, warm, lastLoaded, last].map((s) => pick(s).toFixed(digits)).join(' | ')} | ${max(pick).toFixed(digits)} |`,
    );
  row('RSS MB', (s) => s.rssMb, 1);
  row('open fds', (s) => s.fds);
  row('threads', (s) => s.threads);
  row('heap after GC MB', (s) => s.heapMb ?? NaN, 1);
  row('timers', (s) => s.timers ?? NaN);
  row('other handles', (s) => s.handles ?? NaN);
  const grew = (what: string, from: number, to: number) =>
    `${what} grew from ${from.toFixed(1)} to ${to.toFixed(1)}`;
  const problems = [
    lastLoaded.rssMb > warm.rssMb * 1.25 &&
      grew('RSS under load (MB)', warm.rssMb, lastLoaded.rssMb),
    last.rssMb > warm.rssMb * 1.25 && grew('RSS at the end (MB)', warm.rssMb, last.rssMb),
    lastLoaded.fds > warm.fds + 5 && grew('fds under load', warm.fds, lastLoaded.fds),
    last.fds > first.fds + 5 && grew('fds when idle', first.fds, last.fds),
    last.threads > first.threads + 2 && grew('threads', first.threads, last.threads),
    (last.heapMb ?? 0) > (warm.heapMb ?? Infinity) * 1.25 &&
      grew('heap after GC (MB)', warm.heapMb!, last.heapMb!),
    (last.timers ?? 0) > (first.timers ?? Infinity) + 2 &&
      grew('timers when idle', first.timers!, last.timers!),
    (last.handles ?? 0) > (first.handles ?? Infinity) + 2 &&
      grew('handles when idle', first.handles!, last.handles!),
  ].filter(Boolean);
  if (problems.length > 0) {
    console.log(`FAILED: ${problems.join('; ')}`);
    process.exitCode = 1;
  } else {
    console.log(
      'flat: RSS and heap after GC within 25% of the warm-up; fds within 5 (under load and idle); threads, timers and handles when idle within 2 of the start',
    );
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
