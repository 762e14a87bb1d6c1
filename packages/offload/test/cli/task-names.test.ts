import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createRuntime, defineTask, type Runtime } from '../../src/index.js';
import { postgresStore } from '../../src/postgres/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { captureLogger, ROOT, tempDir } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'packages/offload/src/cli/main.ts');
const temp = tempDir();
after(() => temp.remove());

/** Runs the CLI in a process of its own; resolves with its exit code and output. */
async function cli(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      timeout: 15_000,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const mail = defineTask({ name: 'mail', run: () => {} });
const other = defineTask({ name: 'other', run: () => {} });

/** A runtime of its own on `store`, as a restarted process would make. */
function runtimeOn(store: Store): Runtime {
  return createRuntime({ store, tasks: [mail, other], logger: captureLogger() });
}

/**
 * Pauses `mail` from the CLI (another process), then checks that a runtime made afterwards (a
 * restart) leaves its tasks queued and runs the others, and that resuming runs them.
 */
async function pauseSurvivesAndIsObeyed(env: Record<string, string>, store: () => Store) {
  const setup = runtimeOn(store());
  await setup.enqueue(mail, {}); // makes the database
  await setup.stop();

  const paused = await cli(env, 'pause', 'mail');
  assert.equal(paused.code, 0, paused.stderr);
  assert.match(paused.stdout, /tasks named mail are paused/);
  assert.match((await cli(env, 'pause', 'mail')).stdout, /were paused already/);
  const listed = await cli(env, 'paused', '--json');
  const view = JSON.parse(listed.stdout) as { paused: { name: string; pausedAt: string }[] };
  assert.deepEqual(
    view.paused.map((p) => p.name),
    ['mail'],
  );

  const runtime = runtimeOn(store());
  try {
    const held = await runtime.enqueue(mail, {});
    const free = await runtime.enqueue(other, {});
    await runtime.start();
    await runtime.drain();
    assert.equal((await runtime.get(free.id))?.state, 'succeeded');
    assert.equal((await runtime.get(held.id))?.state, 'queued');
    assert.deepEqual(
      (await runtime.paused()).map((p) => p.name),
      ['mail'],
    );

    const resumed = await cli(env, 'resume', 'mail');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /tasks named mail are resumed/);
    await runtime.drain();
    assert.equal((await runtime.get(held.id))?.state, 'succeeded');
    assert.match((await cli(env, 'paused')).stdout, /no task name is paused/);
  } finally {
    await runtime.stop();
  }
}

describe('offload pause, resume, paused', () => {
  it('on SQLite, a pause made by another process is stored and obeyed after a restart', async () => {
    const path = join(temp.dir, 'names.db');
    await pauseSurvivesAndIsObeyed({ DATABASE_URL: `sqlite:${path}` }, () => sqliteStore({ path }));
  });

  it('on PostgreSQL, a pause made by another process is stored and obeyed after a restart', async () => {
    const schema = uniqueSchema('cli_pause');
    try {
      await pauseSurvivesAndIsObeyed(
        { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
        () => postgresStore({ connectionString: TEST_DATABASE_URL, schema }),
      );
    } finally {
      await dropSchema(schema);
    }
  });

  it('exits 2 with the usage for a missing or bad name', async () => {
    const env = { DATABASE_URL: `sqlite:${join(temp.dir, 'usage.db')}` };
    const missing = await cli(env, 'pause');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /offload pause needs a task name/);
    assert.match(missing.stderr, /offload resume NAME/);
    const bad = await cli(env, 'resume', ' padded');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /NAME must be a task name/);
  });
});
