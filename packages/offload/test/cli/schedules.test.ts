import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createRuntime, MINUTE } from '../../src/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { captureLogger, ROOT, tempDir } from '../helpers.js';

const run = promisify(execFile);
/** The library's `offload` command, from its sources. */
const CLI = join(ROOT, 'packages/offload/src/cli/main.ts');
const temp = tempDir();
const path = join(temp.dir, 'cli.db');
after(() => temp.remove());

/** Runs the CLI on the test's database; resolves with its exit code and output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: `sqlite:${path}` },
      timeout: 15_000,
      killSignal: 'SIGKILL',
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** The schedule `name` as `offload schedules get` prints it. */
async function shown(name: string): Promise<{ paused: boolean; nextRunAt: string | null }> {
  const { code, stdout, stderr } = await cli('schedules', 'get', name);
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout) as { paused: boolean; nextRunAt: string | null };
}

describe('offload schedules', () => {
  before(async () => {
    const runtime = createRuntime({ store: sqliteStore({ path }), logger: captureLogger() });
    await runtime.schedules.set(
      'weekday-report',
      { cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' },
      'report',
      { kind: 'daily' },
    );
    await runtime.schedules.set('poll', { every: 5 * MINUTE, catchUp: 'one' }, 'poll', null);
    await runtime.stop();
  });

  it('lists schedules as a table and as JSON', async () => {
    const table = await cli('schedules', 'list');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^NAME +RULE +TASK +STATE +NEXT RUN +LAST RUN +LAST TASK$/m);
    assert.match(table.stdout, /^poll +every 300s \(catch up: one\) +poll +active +\d{4}-/m);
    assert.match(table.stdout, /^weekday-report +0 9 \* \* 1-5 Europe\/Berlin +report +active /m);
    const listed = await cli('schedules', 'list', '--json');
    const { schedules } = JSON.parse(listed.stdout) as { schedules: { name: string }[] };
    assert.deepEqual(
      schedules.map((s) => s.name),
      ['poll', 'weekday-report'],
    );
  });

  it('shows one schedule, pauses, resumes and removes it', async () => {
    const schedule = (await shown('weekday-report')) as unknown as Record<string, unknown>;
    assert.deepEqual(schedule.rule, {
      cron: '0 9 * * 1-5',
      timezone: 'Europe/Berlin',
      catchUp: 'skip',
      maxCatchUp: 100,
    });
    assert.deepEqual(schedule.payload, { kind: 'daily' });
    assert.equal(schedule.paused, false);
    assert.match(String(schedule.nextRunAt), /^\d{4}-\d\d-\d\dT0[78]:00:00\.000Z$/);

    const paused = await cli('schedules', 'pause', 'weekday-report');
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /schedule weekday-report is paused/);
    const afterPause = await shown('weekday-report');
    assert.deepEqual([afterPause.paused, afterPause.nextRunAt], [true, null]);

    const resumed = await cli('schedules', 'resume', 'weekday-report');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /is resumed; it fires next at \d{4}-/);
    assert.equal((await shown('weekday-report')).paused, false);

    const removed = await cli('schedules', 'remove', 'poll');
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /schedule poll is removed/);
    const gone = await cli('schedules', 'get', 'poll');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no schedule is named "poll"/);
  });

  it('says what went wrong: an unknown schedule exits 1, a usage mistake exits 2', async () => {
    for (const action of ['pause', 'resume', 'remove']) {
      const missing = await cli('schedules', action, 'nope');
      assert.equal(missing.code, 1, action);
      assert.match(missing.stderr, /no schedule is named "nope"/);
    }
    for (const [args, message] of [
      [['schedules', 'frobnicate'], /unknown action "frobnicate"/],
      [['schedules', 'get'], /offload schedules get needs a schedule name/],
      [['schedules', 'list', 'x'], /takes no name/],
      [['schedules', 'pause', 'x', '--json'], /--json is an option of offload schedules list only/],
    ] as const) {
      const wrong = await cli(...args);
      assert.equal(wrong.code, 2, args.join(' '));
      assert.match(wrong.stderr, message);
      assert.match(wrong.stderr, /offload schedules list \[--json\]/, 'prints the usage');
    }
    const help = await cli('--help');
    assert.match(help.stdout, /offload schedules pause NAME/);
  });
});
