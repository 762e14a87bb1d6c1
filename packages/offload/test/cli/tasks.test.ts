import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createRuntime, defineTask, PermanentError, type Task } from '../../src/index.js';
import { postgresStore } from '../../src/postgres/index.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { captureLogger, ROOT, tempDir } from '../helpers.js';
import { dropSchema, schemaExists, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

const run = promisify(execFile);
/** The library's `offload` command, from its sources. */
const CLI = join(ROOT, 'packages/offload/src/cli/main.ts');
const temp = tempDir();
const DATABASE_URL = `sqlite:${join(temp.dir, 'cli.db')}`;
after(() => temp.remove());

/** Runs the CLI; resolves with its exit code and output, whatever the code. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWith({ DATABASE_URL }, ...args);
}

/** Runs the CLI with `env` added to this process's, killed with SIGKILL (a hang ignored SIGTERM). */
async function cliWith(
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

describe('offload tasks', () => {
  let failed: Task;
  let queued: Task;

  before(async () => {
    const broken = defineTask({
      name: 'broken',
      run: (_payload, ctx) => {
        ctx.progress({ sent: 0, of: 1 });
        return Promise.reject(new PermanentError('the SMTP server said no'));
      },
    });
    const runtime = createRuntime({
      store: sqliteStore({ path: join(temp.dir, 'cli.db') }),
      tasks: [broken],
      logger: captureLogger(),
    });
    failed = (await runtime.enqueue(broken, { to: 'ada@example.com' })) as Task;
    queued = (await runtime.enqueue('elsewhere', { n: 1 })) as Task;
    // Started, not only drained: a file SQLite store claims only for a registered worker.
    await runtime.start();
    await runtime.drain();
    await runtime.stop();
  });

  it('lists tasks as a table and as JSON, filtered', async () => {
    const table = await cli('tasks', 'list');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^ID +STATE +NAME +ATTEMPTS +CREATED +LAST ERROR$/m);
    assert.match(
      table.stdout,
      new RegExp(`^${failed.id} +failed +broken +1/5 .*the SMTP server said no$`, 'm'),
    );
    const listed = await cli('tasks', 'list', '--state', 'queued', '--json');
    const page = JSON.parse(listed.stdout) as {
      tasks: { id: string; state: string }[];
      nextCursor: null;
    };
    assert.deepEqual(
      page.tasks.map((t) => [t.id, t.state]),
      [[queued.id, 'queued']],
    );
    assert.equal(page.nextCursor, null);
  });

  it('shows one task with its payload, errors and progress', async () => {
    const { code, stdout } = await cli('tasks', 'show', failed.id);
    assert.equal(code, 0);
    const task = JSON.parse(stdout) as {
      state: string;
      payload: unknown;
      errors: { name: string }[];
      lastError: { message: string };
      progress: unknown;
    };
    assert.equal(task.state, 'failed');
    assert.deepEqual(task.progress, { sent: 0, of: 1 });
    assert.deepEqual(task.payload, { to: 'ada@example.com' });
    assert.equal(task.errors[0]?.name, 'PermanentError');
    assert.equal(task.lastError.message, 'the SMTP server said no');
  });

  it('retries a failed task and cancels a queued one, refusing the wrong states', async () => {
    const retried = await cli('tasks', 'retry', failed.id);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /queued again/);
    const twice = await cli('tasks', 'retry', failed.id);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /only failed or canceled tasks can be retried/);
    const canceled = await cli('tasks', 'cancel', queued.id);
    assert.equal(canceled.code, 0, canceled.stderr);
    const shown = JSON.parse((await cli('tasks', 'show', queued.id)).stdout) as { state: string };
    assert.equal(shown.state, 'canceled');
  });

  it('says what went wrong: an unknown task exits 1, a usage mistake exits 2', async () => {
    const missing = await cli('tasks', 'show', '424242');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no task has id "424242"/);
    for (const args of [
      ['tasks', 'frobnicate'],
      ['tasks', 'show'],
      ['tasks', 'list', '--limit', 'many'],
      ['launch'],
    ]) {
      const wrong = await cli(...args);
      assert.equal(wrong.code, 2, args.join(' '));
      assert.match(wrong.stderr, /offload tasks list/, 'prints the usage');
    }
    // Options are refused, not ignored, where they mean nothing or match nothing.
    for (const [args, message] of [
      [
        ['tasks', 'show', failed.id, '--state', 'queued'],
        /--state is an option of offload tasks list only/,
      ],
      [['tasks', 'cancel', failed.id, '--json'], /--json is an option of offload tasks list only/],
      [['tasks', 'list', '--name', ''], /--name must be a task name: 1 to 200 characters/],
    ] as const) {
      const wrong = await cli(...args);
      assert.equal(wrong.code, 2, args.join(' '));
      assert.match(wrong.stderr, message);
    }
    // The refused cancel changed nothing: the task retried above is still queued.
    const untouched = JSON.parse((await cli('tasks', 'show', failed.id)).stdout) as {
      state: string;
    };
    assert.equal(untouched.state, 'queued');
    const help = await cli('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /offload migrate \[--database URL\]/);
  });
});

describe('the usage of offload', () => {
  it('prints the usage of tasks and of migrate for --help, -h and help, and exits 0', async () => {
    for (const args of [
      ['tasks', '--help'],
      ['tasks', 'help'],
      ['tasks', 'list', '-h'],
      ['tasks', 'show', '7', '--stat', '--help'],
    ]) {
      const { code, stdout, stderr } = await cli(...args);
      assert.equal(code, 0, args.join(' '));
      assert.match(stdout, /^offload tasks list \[--state STATE\]/, args.join(' '));
      assert.doesNotMatch(stdout, /offload migrate/, 'the usage of tasks only');
      assert.equal(stderr, '');
    }
    const migrate = await cli('migrate', '--help');
    assert.equal(migrate.code, 0);
    assert.match(migrate.stdout, /^offload migrate \[--database URL\]/);
    assert.doesNotMatch(migrate.stdout, /offload tasks/);
  });

  it('exits 2 on a mistake in the call, naming what a typo meant, with the usage of its command', async () => {
    for (const [args, message, usage] of [
      [['tasks', '--stat', 'failed'], 'unknown option --stat; did you mean --state?', 'tasks'],
      [['tasks', 'list', '--jsno'], 'unknown option --jsno; did you mean --json?', 'tasks'],
      [['tasks', 'list', '--frobnicate'], 'unknown option --frobnicate', 'tasks'],
      [['tasks', 'list', '-x'], 'unknown option -x', 'tasks'],
      [['tasks', 'lsit'], 'unknown action "lsit"; did you mean list?', 'tasks'],
      [['tasks', 'list', '--state'], '--state needs a value', 'tasks'],
      [['tasks', 'list', '--state', '--json'], '--state needs a value', 'tasks'],
      [['tasks', 'list', '--json=yes'], '--json takes no value', 'tasks'],
      [
        ['migrate', '--databse', 'sqlite:x.db'],
        'unknown option --databse; did you mean --database?',
        'migrate',
      ],
      [['migrate', 'now'], 'unexpected argument "now"', 'migrate'],
      [['taks', 'list'], 'unknown command "taks"; did you mean tasks?', 'offload'],
      [['--verison'], 'unknown option --verison; did you mean --version?', 'offload'],
    ] as const) {
      const { code, stdout, stderr } = await cli(...args);
      assert.equal(code, 2, args.join(' '));
      assert.equal(stdout, '');
      const [first, blank, ...rest] = stderr.split('\n');
      assert.deepEqual([first, blank], [`offload: ${message}`, ''], args.join(' '));
      const printed = rest.join('\n');
      if (usage === 'offload') assert.match(printed, /^offload — durable background tasks/);
      else assert.match(printed, new RegExp(`^offload ${usage} `), args.join(' '));
      if (usage === 'tasks') assert.doesNotMatch(printed, /offload migrate/);
    }
  });
});

describe('offload tasks on a database that is not there', () => {
  it('exits 1 naming the path, and creates neither the file nor its directory', async () => {
    const missing = join(temp.dir, 'newdir', 'nonexist.db');
    for (const args of [['list'], ['show', '1'], ['retry', '1'], ['cancel', '1']]) {
      const flag = await cli('tasks', ...args, '--database', `sqlite:${missing}`);
      assert.equal(flag.code, 1, args.join(' '));
      assert.equal(flag.stdout, '');
      assert.equal(
        flag.stderr,
        `offload: --database: there is no SQLite database at ${missing}: the file does not exist. Check DATABASE_URL or --database: the tasks commands work on an existing database and create none\n`,
      );
    }
    const variable = await cliWith({ DATABASE_URL: `sqlite:${missing}` }, 'tasks', 'list');
    assert.equal(variable.code, 1);
    assert.match(variable.stderr, /^offload: DATABASE_URL: there is no SQLite database at /);
    assert.ok(!existsSync(join(temp.dir, 'newdir')), 'no directory was created');
  });

  it('exits 1 at once on a path under /proc, where a recursive mkdir looped forever', async () => {
    const proc = await cli('tasks', 'list', '--database', 'sqlite:/proc/offload-forbidden/x.db');
    assert.equal(proc.code, 1, proc.stderr);
    assert.match(proc.stderr, /^offload: --database: there is no SQLite database at \/proc\//);
    const migrate = await cliWith(
      { DATABASE_URL: 'sqlite:/proc/offload-forbidden/x.db' },
      'migrate',
    );
    assert.equal(migrate.code, 1, migrate.stderr);
    assert.match(
      migrate.stderr,
      /^offload: DATABASE_URL: could not open the SQLite database \/proc\/offload-forbidden\/x\.db: could not create the directory \/proc\/offload-forbidden: ENOENT/,
    );
  });

  it('on PostgreSQL, exits 1 naming a schema no Offload process has used, and creates none', async () => {
    const schema = uniqueSchema('cli_missing');
    const missing = await cliWith(
      { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
      'tasks',
      'list',
    );
    assert.equal(missing.code, 1, missing.stderr);
    assert.equal(
      missing.stderr,
      `offload: DATABASE_URL: the PostgreSQL database has no Offload schema ${schema}: no Offload process has used that schema in this database. Check DATABASE_URL or --database, and DATABASE_SCHEMA: the tasks commands work on an existing database and create none\n`,
    );
    assert.equal(await schemaExists(schema), false, 'no schema was created');

    // Once the service has made the schema, the same command lists its tasks.
    const runtime = createRuntime({
      store: postgresStore({ connectionString: TEST_DATABASE_URL, schema }),
      logger: captureLogger(),
    });
    try {
      const task = (await runtime.enqueue('elsewhere', {})) as Task;
      const listed = await cliWith(
        { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema },
        'tasks',
        'list',
        '--json',
      );
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(
        (JSON.parse(listed.stdout) as { tasks: { id: string }[] }).tasks.map((t) => t.id),
        [task.id],
      );
    } finally {
      await runtime.stop();
      await dropSchema(schema);
    }
  });

  it('refuses memory:, which never holds the tasks of another process', async () => {
    const memory = await cliWith({ DATABASE_URL: 'memory:' }, 'tasks', 'list');
    assert.equal(memory.code, 1);
    assert.match(memory.stderr, /^offload: DATABASE_URL: memory: keeps the tasks of one process/);
  });

  it('names --database or DATABASE_URL, whichever gave a URL of the wrong form', async () => {
    const flag = await cli('tasks', 'list', '--database', 'foo:bar');
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /^offload: --database: "foo:bar" is not a store URL/);
    const variable = await cliWith({ DATABASE_URL: 'foo:bar' }, 'tasks', 'list');
    assert.equal(variable.code, 1);
    assert.match(variable.stderr, /^offload: DATABASE_URL: "foo:bar" is not a store URL/);
  });
});
