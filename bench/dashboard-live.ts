/**
 * The cost of the dashboard's live updates to the service, for bench/dashboard.ts: the notify
 * throughput of one service (in this process, SQLite on a temporary file, demo notifications that
 * finish at once, so that every request makes task events), measured in rounds of autocannon
 * (8 connections, a process of its own) that alternate without and with a connected dashboard SSE
 * client watching 50 tasks (ABBA…), connected before the round once it had its first counts (the
 * one count a page opening costs). The cost is 1 - median(with) / median(without), in
 * throughput and in the service's CPU time per answered request (this process's, which the load
 * generator does not share): on a shared machine the second is the steadier.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { loadConfig } from '../apps/service/src/config.js';
import { createService } from '../apps/service/src/service.js';
import type { ClientOptions, ClientResult } from './http-client.js';
import { createRuntime, defineTask, memoryStore } from '../packages/offload/src/index.js';
import { createDashboard } from '../packages/offload/src/dashboard/index.js';
import { benchLogger, int, median, table, tempDatabase } from './lib.js';

v8.setFlagsFromString('--expose-gc');
/** `gc()`, without starting the process with `--expose-gc`. */
const collectGarbage = runInNewContext('gc') as () => void;

export interface AbResult {
  without: number;
  with: number;
  costPercent: number;
  /** The service's CPU time per answered request, µs: without and with the client. */
  cpuWithout: number;
  cpuWith: number;
  cpuCostPercent: number;
  markdown: string;
}

function client(url: string, duration: number): Promise<ClientResult> {
  const options: ClientOptions = { url, mode: 'autocannon', connections: 8, duration, warmUp: 1 };
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      join(import.meta.dirname, 'http-client.ts'),
      JSON.stringify(options),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0) return reject(new Error(`the load generator exited with ${code}`));
      resolve(JSON.parse(line) as ClientResult);
    });
  });
}

/** Connects a dashboard SSE client watching `ids`; returns how many frames it got, and a close. */
function watch(url: string, ids: string[]): { frames: () => number; close: () => void } {
  let frames = 0;
  const req = request(`${url}/dashboard/events?ids=${ids.join(',')}`, (response) => {
    response
      .setEncoding('utf8')
      .on('data', (chunk: string) => (frames += chunk.split('\n\n').length - 1));
  });
  req.on('error', () => undefined);
  req.end();
  return { frames: () => frames, close: () => req.destroy() };
}

export async function notifyAb(quick: boolean): Promise<AbResult> {
  const db = tempDatabase('dashboard-live');
  const config = loadConfig({
    DATABASE_URL: `sqlite:${db.path}`,
    NOTIFY_DEMO_DELAY_MS: '0',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
  });
  const service = await createService(config, {
    logger: pino({ level: 'silent' }),
    processMetrics: false,
  });
  const url = await service.listen();
  const pairs = quick ? 2 : 6;
  const duration = 3;
  const rounds: { live: boolean; rps: number; cpuPerRequest: number; frames: number }[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      await fetch(`${url}/api/notifications/notify`, { method: 'POST' });
    }
    const ids = (await service.runtime.list({ limit: 50 })).tasks.map((t) => t.id);
    // ABBA: without, with, with, without, …
    const order = Array.from({ length: pairs * 2 }, (_, i) => i % 4 === 1 || i % 4 === 2);
    for (const live of order) {
      const watcher = live ? await watch(url, ids) : null;
      const cpu = process.cpuUsage();
      const result = await client(url, duration);
      const used = process.cpuUsage(cpu);
      // Warm-up and measured window both ran on this process: the answers of both, estimated
      // from the measured rate.
      const answered = result.rps * (duration + 1);
      rounds.push({
        live,
        rps: result.rps,
        cpuPerRequest: (used.user + used.system) / answered,
        frames: watcher?.frames() ?? 0,
      });
      watcher?.close();
    }
  } finally {
    await service.close();
    db.cleanup();
  }
  const without = median(rounds.filter((r) => !r.live).map((r) => r.rps));
  const withLive = median(rounds.filter((r) => r.live).map((r) => r.rps));
  const costPercent = (1 - withLive / without) * 100;
  const cpuWithout = median(rounds.filter((r) => !r.live).map((r) => r.cpuPerRequest));
  const cpuWith = median(rounds.filter((r) => r.live).map((r) => r.cpuPerRequest));
  const cpuCostPercent = (cpuWith / cpuWithout - 1) * 100;
  return {
    without,
    with: withLive,
    costPercent,
    cpuWithout,
    cpuWith,
    cpuCostPercent,
    markdown: [
      table(
        ['round', 'dashboard client', 'notify req/s', 'service CPU µs per request', 'frames'],
        rounds.map((r, i) => [
          String(i + 1),
          r.live ? 'connected' : 'none',
          int(r.rps),
          r.cpuPerRequest.toFixed(1),
          r.live ? String(r.frames) : '–',
        ]),
      ),
      '',
      `Throughput, median without: ${int(without)} req/s; with: ${int(withLive)} req/s; cost ${costPercent.toFixed(2)}%.`,
      `Service CPU per request, median without: ${cpuWithout.toFixed(1)} µs; with: ${cpuWith.toFixed(1)} µs; cost ${cpuCostPercent.toFixed(2)}%.`,
      'The machine is shared: throughput varies between rounds with the other load, CPU time per request much less. A negative cost is noise.',
    ].join('\n'),
  };
}

/**
 * The same question without HTTP or the network, in CPU time of one thread: tasks that do
 * nothing, run by a runtime on the memory store through `drain()`, rounds alternating without and
 * with a live client (a dashboard stream watching 50 of the tasks). Per task, the runtime emits
 * the events the live client listens to; the difference is what listening costs.
 */
export async function drainAb(
  quick: boolean,
): Promise<{ without: number; with: number; costPercent: number; markdown: string }> {
  const TASKS = quick ? 10_000 : 30_000;
  const noop = defineTask({ name: 'noop', run: () => undefined });
  const rounds: { live: boolean; cpu: number }[] = [];
  const pairs = quick ? 2 : 5;
  const order = Array.from({ length: pairs * 2 }, (_, i) => i % 4 === 1 || i % 4 === 2);
  for (const live of [false, ...order]) {
    const runtime = createRuntime({ store: memoryStore(), tasks: [noop], logger: benchLogger() });
    const board = createDashboard({ runtime, login: false });
    await runtime.enqueueMany(Array.from({ length: TASKS }, () => ({ task: noop, payload: {} })));
    const ids = (await runtime.list({ limit: 50 })).tasks.map((t) => t.id);
    let stop: (() => void) | null = null;
    if (live) {
      const answer = await board.dashboard.handle({
        method: 'GET',
        url: `/dashboard/events?ids=${ids.join(',')}`,
        headers: {},
        body: '',
      });
      if (!('stream' in answer)) throw new Error('no event stream');
      stop = answer.stream(
        () => undefined,
        () => undefined,
      );
    }
    // Every round starts from a collected heap: a full collection of the rounds before would
    // otherwise land in whichever round happens to reach the limit.
    collectGarbage();
    const cpu = process.cpuUsage();
    await runtime.drain();
    const used = process.cpuUsage(cpu);
    stop?.();
    board.close();
    await runtime.stop();
    rounds.push({ live, cpu: (used.user + used.system) / TASKS });
  }
  // The first round warms the code up and is left out.
  const measured = rounds.slice(1);
  const without = median(measured.filter((r) => !r.live).map((r) => r.cpu));
  const withLive = median(measured.filter((r) => r.live).map((r) => r.cpu));
  const costPercent = (withLive / without - 1) * 100;
  return {
    without,
    with: withLive,
    costPercent,
    markdown: [
      table(
        ['round', 'dashboard client', 'CPU µs per task'],
        measured.map((r, i) => [String(i + 1), r.live ? 'connected' : 'none', r.cpu.toFixed(2)]),
      ),
      '',
      `${int(TASKS)} no-op tasks per round on the memory store, drained: median without ${without.toFixed(2)} µs per task, with ${withLive.toFixed(2)} µs; cost ${costPercent.toFixed(2)}%.`,
    ].join('\n'),
  };
}
