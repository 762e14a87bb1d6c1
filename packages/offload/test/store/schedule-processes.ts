/**
 * The exactly-once test of schedules, shared by the SQLite and PostgreSQL files: worker processes
 * on one store fire an every-second schedule while one of them is SIGKILLed midway; the tasks
 * stored then show whether a tick was lost or fired twice.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createRuntime, openStore, SECOND, type Task } from '../../src/index.js';
import { captureLogger, FIXTURES, waitUntil } from '../helpers.js';

/** Ticks stored before the test stops the workers: 60 at least, as asked of the guarantee. */
const TICKS = 64;
/** One worker is killed once this many ticks are stored. */
const KILL_AT = 25;
/** Upper bound of the ticks' wait: a test that cannot finish fails instead of hanging. */
const DEADLINE = 100_000;

export interface ExactlyOnceSetup {
  url: string;
  schema?: string;
  workers: number;
}

export async function fireEverySecondWithAKill({
  url,
  schema,
  workers: count,
}: ExactlyOnceSetup): Promise<void> {
  const env = { DATABASE_URL: url, ...(schema ? { OFFLOAD_SCHEMA: schema } : {}) };
  const admin = createRuntime({
    store: await openStore(url, { schema }),
    logger: captureLogger(),
  });
  const workers: ChildProcess[] = [];
  const ran: string[] = [];
  try {
    await admin.schedules.set('tick', { every: SECOND }, 'tick', {});
    for (let i = 0; i < count; i++) workers.push(await startWorker(`worker-${i}`, env, ran));
    const ticks = async () =>
      (await admin.list({ keyPrefix: 'schedule:tick:', limit: 1000 })).tasks;
    await waitUntil('ticks before the kill', async () => (await ticks()).length >= KILL_AT, {
      timeout: DEADLINE,
      interval: 200,
    });
    const killed = workers[0]!;
    killed.kill('SIGKILL');
    await once(killed, 'exit');
    await waitUntil('ticks after the kill', async () => (await ticks()).length >= TICKS, {
      timeout: DEADLINE,
      interval: 200,
    });
    await Promise.all(workers.slice(1).map((w) => (w.kill('SIGTERM'), once(w, 'exit'))));
    const tasks = await ticks();
    check(tasks, ran);
  } finally {
    for (const worker of workers) if (worker.exitCode === null) worker.kill('SIGKILL');
    await Promise.all(
      workers.map((w) =>
        w.exitCode !== null || w.signalCode !== null ? undefined : once(w, 'exit'),
      ),
    );
    await admin.stop();
  }
}

/** No tick lost (the due times are whole seconds apart), none fired twice, each run once. */
function check(tasks: Task[], ran: string[]): void {
  const due = tasks.map((task) => task.runAt.getTime()).sort((a, b) => a - b);
  assert.ok(due.length >= TICKS, `${due.length} ticks`);
  assert.equal(new Set(due).size, due.length, 'no due time was fired twice');
  const gaps = due.slice(1).flatMap((at, i) => (at - due[i]! === SECOND ? [] : [at - due[i]!]));
  assert.deepEqual(gaps, [], 'no tick was lost: every second from the first to the last');
  assert.deepEqual(
    new Set(tasks.map((task) => task.key)),
    new Set(due.map((at) => `schedule:tick:${at}`)),
  );
  // A tick task may run again only if the killed worker was running it (at least once).
  const runs = new Map<string, number>();
  for (const id of ran) runs.set(id, (runs.get(id) ?? 0) + 1);
  const twice = [...runs].filter(([, n]) => n > 1).map(([id]) => id);
  const rescued = tasks.filter((t) => t.errors.some((e) => e.name === 'TaskInterruptedError'));
  assert.ok(
    twice.every((id) => rescued.some((t) => t.id === id)),
    `ran twice: ${twice.join(', ')}; rescued: ${rescued.map((t) => t.id).join(', ')}`,
  );
  const late = tasks.map((t) => t.createdAt.getTime() - t.runAt.getTime()).sort((a, b) => a - b);
  console.log(
    `# ${due.length} ticks fired once each; fired late by median ${late[late.length >> 1]} ms, max ${late.at(-1)} ms; ${twice.length} tick tasks ran twice (rescued from the killed worker)`,
  );
}

async function startWorker(
  owner: string,
  env: Record<string, string>,
  ran: string[],
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join(FIXTURES, 'schedule-worker.ts')],
    {
      env: { ...process.env, ...env, OFFLOAD_OWNER: owner },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let ready: () => void;
  const started = new Promise<void>((resolve) => (ready = resolve));
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (line === 'ready') ready();
      else if (line.startsWith('ran ')) ran.push(line.slice(4));
    }
  });
  await Promise.race([
    started,
    once(child, 'exit').then(() => {
      throw new Error(`${owner} exited before it was ready`);
    }),
  ]);
  return child;
}
