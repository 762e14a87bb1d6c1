/**
 * The kill test: the service as real processes, SIGKILLed at random moments while a client sends
 * notify requests for webhooks to a local ledger; at the end every accepted request must have been
 * delivered at least once (lost = 0). `npm run chaos` runs it at full size; test/chaos.test.ts at a
 * small one.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../../apps/service/test/fixtures/service-harness.js';
import {
  dropSchema,
  TEST_DATABASE_URL,
  uniqueSchema,
} from '../../packages/offload/test/pg-helpers.js';
import { startLedger, type Ledger } from './ledger.js';
import { NotifyClient, type ClientReport } from './notify-client.js';
import { Supervised } from './processes.js';
import { seededRandom, type Random } from './random.js';

export type Backend = 'sqlite' | 'postgres';

/** When to kill: every `every` ms (a random span), or as the accepted count reaches each point. */
export type KillSchedule = { every: [number, number] } | { afterAccepted: number[] };

export interface KillTestOptions {
  backend: Backend;
  requests: number;
  concurrency: number;
  seed: number;
  schedule: KillSchedule;
  /** PostgreSQL: worker processes (a random one is killed each time). Default 3. */
  workers?: number;
  /** The whole run, in ms: past it the run fails and every process is killed. */
  deadline: number;
  /** How long the drain after the last restart may take, in ms. */
  drainDeadline?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface KillReport extends ClientReport {
  backend: Backend;
  seed: number;
  /** Accepted requests whose notification never reached the ledger: must be 0. */
  lost: number;
  /** Notifications delivered more than once. */
  duplicated: number;
  /** Deliveries the ledger received, duplicates included. */
  deliveries: number;
  /** Deliveries of requests that never got a 200 (stored, answer lost to a kill). */
  deliveredUnaccepted: number;
  badSignatures: number;
  kills: number;
  /** From the last restarted process being ready to no task queued or running, in ms. */
  drainMs: number;
  /** Tasks that ended `failed` (attempts used up). */
  failedTasks: number;
  /** Exits nobody asked for. */
  crashes: string[];
  /** Exit codes of the SIGTERM at the end: all 0. */
  finalExits: (number | string | null)[];
  elapsedMs: number;
}

const POLL = 100;

export async function runKillTest(options: KillTestOptions): Promise<KillReport> {
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  const random = seededRandom(options.seed);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const temp = tempDir();
  const schema = options.backend === 'postgres' ? uniqueSchema('chaos') : null;
  let ledger: Ledger | undefined;
  const processes: Supervised[] = [];
  const watchdog = new AbortController();
  const timer = setTimeout(() => watchdog.abort(), options.deadline);
  try {
    ledger = await startLedger(secret);
    const env: Record<string, string> = {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE: '2',
      WEBHOOK_SECRET: secret,
      ALLOW_PRIVATE_HOSTS: '127.0.0.1',
      ...(schema === null
        ? { DATABASE_URL: `sqlite:${join(temp.dir, 'chaos.db')}` }
        : { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '5' }),
    };
    let api: Supervised;
    let victims: Supervised[];
    if (schema === null) {
      api = new Supervised('serve', 'serve', env);
      victims = [api];
    } else {
      api = new Supervised('api', 'serve --no-runner', env);
      victims = Array.from(
        { length: options.workers ?? 3 },
        (_, i) => new Supervised(`worker-${i}`, 'worker', env),
      );
    }
    processes.push(...new Set([api, ...victims]));
    await guarded(Promise.all(processes.map((p) => p.start())), watchdog.signal);
    log(`# ${options.backend}: ${processes.map((p) => p.name).join(', ')} up; seed ${random.seed}`);

    const client = new NotifyClient({
      target: api,
      hookUrl: ledger.url,
      requests: options.requests,
      concurrency: options.concurrency,
      keyPrefix: `chaos-${random.seed}-${randomBytes(4).toString('hex')}`,
    });
    const clientDone = new AbortController();
    const sending = client.run().finally(() => clientDone.abort());
    const killing = killWhileSending(
      options.schedule,
      victims,
      client,
      random,
      clientDone.signal,
      log,
    );
    const clientReport = await guarded(sending, watchdog.signal);
    await guarded(killing, watchdog.signal);

    // One last kill once every request is answered: the drain after it is what gets measured.
    const last = victims[random.between(0, victims.length - 1)]!;
    await guarded(last.killAndRestart(), watchdog.signal);
    const restarted = performance.now();
    log(`# last kill (${last.name}) done; draining`);
    await guarded(drained(api, ledger, options.drainDeadline ?? 120_000), watchdog.signal);
    const drainMs = performance.now() - restarted;
    const failedTasks = await count(api, 'failed');

    let lost = 0;
    const accepted = new Set<string>();
    for (const { webhookId } of client.accepted.values()) {
      accepted.add(webhookId);
      if (!ledger.deliveries.has(webhookId)) lost += 1;
    }
    let duplicated = 0;
    let deliveredUnaccepted = 0;
    for (const [id, times] of ledger.deliveries) {
      if (times > 1) duplicated += 1;
      if (!accepted.has(id)) deliveredUnaccepted += 1;
    }
    const crashes = processes.flatMap((p) => p.crashes);
    const finalExits = await Promise.all(processes.map((p) => p.stop('SIGTERM')));
    return {
      backend: options.backend,
      seed: random.seed,
      ...clientReport,
      lost,
      duplicated,
      deliveries: ledger.total(),
      deliveredUnaccepted,
      badSignatures: ledger.badSignatures(),
      kills: victims.reduce((sum, v) => sum + v.kills, 0),
      drainMs,
      failedTasks,
      crashes,
      finalExits,
      elapsedMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await ledger?.close();
    temp.remove();
    if (schema !== null) await dropSchema(schema);
  }
}

async function killWhileSending(
  schedule: KillSchedule,
  victims: Supervised[],
  client: NotifyClient,
  random: Random,
  done: AbortSignal,
  log: (line: string) => void,
): Promise<void> {
  const points = 'afterAccepted' in schedule ? [...schedule.afterAccepted] : null;
  for (;;) {
    if (points === null) {
      const [min, max] = (schedule as { every: [number, number] }).every;
      // The schedule itself: a random moment, not a wait for a condition.
      const waited = await sleep(random.between(min, max), true, { signal: done }).catch(
        () => false,
      );
      if (!waited) return;
    } else {
      const point = points.shift();
      if (point === undefined || !(await acceptedReach(client, point, done))) return;
    }
    const victim = victims[random.between(0, victims.length - 1)]!;
    await victim.killAndRestart();
    log(`# killed and restarted ${victim.name} at ${client.accepted.size} accepted`);
  }
}

/** Resolves true once `point` requests are accepted, false if the client finished first. */
function acceptedReach(client: NotifyClient, point: number, done: AbortSignal): Promise<boolean> {
  if (client.accepted.size >= point) return Promise.resolve(true);
  if (done.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (reached: boolean) => {
      client.off('accepted', onAccepted);
      done.removeEventListener('abort', onDone);
      resolve(reached);
    };
    const onAccepted = (size: number) => size >= point && finish(true);
    const onDone = () => finish(false);
    client.on('accepted', onAccepted);
    done.addEventListener('abort', onDone);
  });
}

/** Waits until no task is queued or running and the ledger no longer grows. */
async function drained(api: Supervised, ledger: Ledger, deadline: number): Promise<void> {
  const end = performance.now() + deadline;
  let seen = -1;
  for (;;) {
    const busy = (await count(api, 'queued')) + (await count(api, 'running'));
    if (busy === 0 && ledger.total() === seen) return;
    seen = busy === 0 ? ledger.total() : -1;
    if (performance.now() > end)
      throw new Error(`not drained within ${deadline} ms: ${busy} tasks queued or running`);
    await sleep(POLL);
  }
}

/** How many tasks are in `state`, up to 1000, through the API. */
async function count(api: Supervised, state: string): Promise<number> {
  const response = await fetch(`${await api.url()}/api/tasks?state=${state}&limit=1000`);
  if (!response.ok) throw new Error(`GET /api/tasks?state=${state}: ${response.status}`);
  return ((await response.json()) as { tasks: unknown[] }).tasks.length;
}

/** `work`, unless the watchdog fires first. */
function guarded<T>(work: Promise<T>, watchdog: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onTimeout = () => reject(new Error('the kill test ran past its deadline'));
    if (watchdog.aborted) return onTimeout();
    watchdog.addEventListener('abort', onTimeout, { once: true });
    work.then(resolve, reject).finally(() => watchdog.removeEventListener('abort', onTimeout));
  });
}

/** The report as a Markdown table. */
export function formatReport(report: KillReport): string {
  const rows: [string, string | number][] = [
    ['seed', report.seed],
    ['requests sent', report.requests],
    ['HTTP sends (retries included)', report.sends],
    ['accepted (200)', report.accepted],
    ['refused (4xx)', report.refused],
    ['failed (no 200 after every try)', report.failed],
    ['connection errors (retried)', report.connectionErrors],
    ['5xx answers (retried)', report.serverErrors],
    ['**lost**', report.lost],
    ['duplicated (delivered more than once)', report.duplicated],
    ['deliveries received', report.deliveries],
    ['delivered, never answered 200', report.deliveredUnaccepted],
    ['bad signatures', report.badSignatures],
    ['kills survived', report.kills],
    ['tasks failed for good', report.failedTasks],
    ['crashes (exits not asked for)', report.crashes.length],
    ['drain after the last restart', `${(report.drainMs / 1000).toFixed(2)} s`],
    ['whole run', `${(report.elapsedMs / 1000).toFixed(1)} s`],
  ];
  return [
    `| ${report.backend} | |`,
    '| --- | ---: |',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
  ].join('\n');
}
