import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { createRuntime, type Runtime } from '../../src/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { captureLogger, FIXTURES } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'offload-crash-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Line {
  pid: number;
  event: string;
  id?: string;
  attempt?: number;
  attempts?: number;
}

/** A worker process on `db` whose stdout lines can be awaited. */
function worker(db: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(FIXTURES, 'crash-worker.ts')], {
    env: { ...process.env, OFFLOAD_DB: db, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines: Line[] = [];
  const waiters: { match: (lines: Line[]) => boolean; resolve: () => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    lines.push(JSON.parse(text) as Line);
    for (const waiter of [...waiters]) {
      if (waiter.match(lines)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return {
    child,
    lines,
    exited,
    /** Resolves once `match` holds for the lines so far; fails the test after `timeout` ms. */
    until(what: string, match: (lines: Line[]) => boolean, timeout = 20_000): Promise<void> {
      if (match(lines)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`worker ${child.pid}: no ${what} within ${timeout} ms`)),
          timeout,
        );
        waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

const count = (event: string, ids: string[]) => (lines: Line[]) =>
  ids.every((id) => lines.some((l) => l.event === event && l.id === id));

async function producer(db: string): Promise<Runtime> {
  return createRuntime({ store: sqliteStore({ path: db }), logger: captureLogger() });
}

describe('crash rescue on SQLite (real processes, SIGKILL)', () => {
  it('runs the tasks of a killed process again as soon as a new one starts', async () => {
    const db = join(dir, 'restart.db');
    const client = await producer(db);
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await client.enqueue('record', { hang: true })).id);

    const first = worker(db);
    await first.until('runs of all tasks', count('run', ids));
    first.child.kill('SIGKILL');
    await first.exited;

    const restartedAt = performance.now();
    const second = worker(db);
    await second.until('successes after the restart', count('success', ids));
    const rescueMs = performance.now() - restartedAt;
    console.log(
      `# tasks of the killed process succeeded ${rescueMs.toFixed(0)} ms after the restart (process start included)`,
    );

    for (const id of ids) {
      const task = (await client.get(id))!;
      assert.equal(task.state, 'succeeded');
      assert.equal(task.attempts, 2, 'the crashed attempt counts');
      assert.equal(task.errors[0]?.name, 'TaskInterruptedError');
    }
    // The lease was 10 minutes: only seeing that the owner died can explain a rescue this soon.
    assert.ok(second.lines.filter((l) => l.event === 'rescue').length === ids.length);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0);
    await client.stop();
  });

  it('lets a live process keep its tasks, and takes them over when it is killed', async () => {
    const db = join(dir, 'shared.db');
    const client = await producer(db);
    const held = [];
    for (let i = 0; i < 3; i++) held.push((await client.enqueue('record', { hang: true })).id);

    const holder = worker(db);
    await holder.until('runs of the held tasks', count('run', held));
    const other = worker(db, { RESCUE_INTERVAL: '20' });
    await other.until('ready', (lines) => lines.some((l) => l.event === 'ready'));

    // The other process works (and looks for dead owners every 20 ms) for a while…
    const own = [];
    for (let i = 0; i < 5; i++) own.push((await client.enqueue('record', { ms: 50 })).id);
    await Promise.all(own.map((id) => waitFor(client, id, 'succeeded')));
    // …and has not taken the live holder's tasks.
    for (const id of held) {
      const task = (await client.get(id))!;
      assert.equal(task.state, 'running');
      assert.equal(task.attempts, 1);
    }
    assert.equal(other.lines.filter((l) => l.event === 'rescue').length, 0);

    holder.child.kill('SIGKILL');
    await holder.exited;
    await other.until('the held tasks, rescued and done', count('success', held));
    for (const id of held) assert.equal((await client.get(id))!.state, 'succeeded');
    other.child.kill('SIGTERM');
    assert.equal(await other.exited, 0);
    await client.stop();
  });
});

async function waitFor(
  runtime: Runtime,
  id: string,
  state: string,
  timeout = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if ((await runtime.get(id))?.state === state) return;
    if (Date.now() > deadline)
      throw new Error(`task ${id} did not reach ${state} within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
