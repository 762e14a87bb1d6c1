import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import {
  dropSchema,
  TEST_DATABASE_URL,
  uniqueSchema,
} from '../../../../packages/offload/test/pg-helpers.js';
import {
  DEMO_DONE,
  finishedTasks,
  listeningUrl,
  OFFLOAD_CLI,
  spawnCli,
  type Child,
} from '../fixtures/service-harness.js';

/** `offload migrate`, `offload-service serve --no-runner` and `offload-service worker`, as real processes. */
describe('postgres roles: API processes and workers apart', () => {
  const schema = uniqueSchema('roles');
  const env = {
    DATABASE_URL: TEST_DATABASE_URL,
    DATABASE_SCHEMA: schema,
    NOTIFY_DEMO_DELAY_MS: '10',
    SHUTDOWN_GRACE: '1',
    LOG_LEVEL: 'info',
  };
  const children: Child[] = [];
  const start = (args: string[], extra: Record<string, string> = {}) => {
    const command = args[0] === 'migrate' ? OFFLOAD_CLI : undefined;
    const child = spawnCli(args, { ...env, ...extra }, command ? { command } : {});
    children.push(child);
    return child;
  };
  after(async () => {
    for (const child of children)
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
    await dropSchema(schema);
  });

  it('migrates, stores tasks in an API-only process, and runs them in a worker', async () => {
    const migrate = start(['migrate']);
    assert.equal(await migrate.exited(20_000), 0, migrate.stderr());
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${schema}".tasks`);
      assert.equal(rows[0].n, 0, 'the schema exists, with no task');
    } finally {
      await client.end();
    }

    const api = start(['serve', '--no-runner'], { PORT: '0', HOST: '127.0.0.1' });
    const url = await listeningUrl(api.logs);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${url}/api/notifications/notify`, { method: 'POST' });
      assert.equal(response.status, 200);
      ids.push(((await response.json()) as { id: string }).id);
    }
    const queued = (await (await fetch(`${url}/api/tasks?state=queued`)).json()) as {
      tasks: { id: string }[];
    };
    assert.deepEqual(
      queued.tasks.map((t) => t.id).sort(),
      [...ids].sort(),
      'nothing runs them yet',
    );

    const worker = start(['worker']);
    await worker.logs.waitForCount((l) => l.msg === DEMO_DONE, 3, 15_000);
    // The worker records the outcomes right after the tasks log their last line.
    const tasks = await finishedTasks(url, ids);
    assert.deepEqual(
      tasks.map((t) => t.state),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.ok(!api.logs.lines.some((l) => l.msg === DEMO_DONE), 'the API process ran none');

    api.process.kill('SIGTERM');
    worker.process.kill('SIGTERM');
    assert.equal(await api.exited(), 0, api.stderr());
    assert.equal(await worker.exited(), 0, worker.stderr());
  });

  it('refuses a bad argument with the usage', async () => {
    const child = start(['worker', '--fast']);
    assert.equal(await child.exited(), 2);
    assert.match(child.stderr(), /^offload-service: unknown option --fast\n/);
    assert.match(child.stderr(), /offload-service worker {6}run tasks/, 'with the usage');
  });
});
