import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { join } from 'node:path';
import type { Task } from '../../../../packages/offload/src/index.js';
import type { TaskView } from '../../../../packages/offload/src/task-view.js';
import {
  DEMO_DONE,
  DEMO_START,
  tempDir,
  testService,
  type TestService,
} from '../fixtures/service-harness.js';
import { nextEvent } from '../../../../packages/offload/test/helpers.js';

const TASK_FIELDS = [
  'id',
  'name',
  'state',
  'attempts',
  'maxAttempts',
  'createdAt',
  'startedAt',
  'finishedAt',
  'runAt',
  'lastError',
  'result',
  'progress',
];
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const temp = tempDir();
after(() => temp.remove());
let count = 0;
const services: TestService[] = [];

/** A service on its own SQLite file: the durable store the service runs on by default. */
async function service(overrides: Parameters<typeof testService>[0] = {}): Promise<TestService> {
  const started = await testService({
    databaseUrl: `sqlite:${join(temp.dir, `service-${++count}.db`)}`,
    ...overrides,
  });
  services.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.close()));
});

/** The checks of FastAPI's example, against any way of sending a request. */
async function seedChecks(
  s: TestService,
  post: () => Promise<{ status: number; body: unknown }>,
): Promise<void> {
  const finished = new Set<string>();
  const off = s.runtime.on('task:success', ({ task }) => void finished.add(task.id));
  const { status, body } = await post();
  off();
  const { id } = body as { id: string };
  // The task works for NOTIFY_DEMO_DELAY_MS: that it had not finished proves the answer did not wait.
  assert.equal(finished.has(id), false, 'the answer came before the task finished');
  const succeeded = nextEvent(s.runtime, 'task:success', 5000, ({ task }) => task.id === id);
  assert.equal(status, 200);
  assert.deepEqual(Object.keys(body as object), ['ok', 'message', 'id']);
  assert.deepEqual(body, { ok: true, message: 'Notification scheduled in background', id });
  const stored = await s.runtime.get(id);
  assert.ok(stored, 'an ok answer means the task is stored');
  await succeeded;
  const start = await s.logs.waitFor((l) => l.msg === DEMO_START && l.taskId === id);
  const done = await s.logs.waitFor((l) => l.msg === DEMO_DONE && l.taskId === id);
  assert.equal(start.task, 'notifications.demo');
  assert.ok((done.time as number) - (start.time as number) >= s.config.notifyDemoDelay - 5);
  assert.equal((await s.runtime.get(id))?.state, 'succeeded');
}

describe('the notify endpoint', () => {
  it("passes the checks of FastAPI's example over inject", async () => {
    const s = await service({ notifyDemoDelay: 150 });
    await seedChecks(s, async () => {
      const response = await s.app.inject({ method: 'POST', url: '/api/notifications/notify' });
      return { status: response.statusCode, body: response.json() };
    });
  });

  it("passes the checks of FastAPI's example over a real socket, with and without an empty JSON body", async () => {
    const s = await service({ notifyDemoDelay: 150 });
    const url = await s.listen();
    for (const init of [{}, { headers: { 'content-type': 'application/json' }, body: '{}' }]) {
      await seedChecks(s, async () => {
        const response = await fetch(`${url}/api/notifications/notify`, {
          method: 'POST',
          ...init,
        });
        assert.match(response.headers.get('x-request-id') ?? '', /.+/);
        return { status: response.status, body: await response.json() };
      });
    }
  });

  it('schedules a notification on the log channel', async () => {
    const s = await service();
    const notification = {
      channel: 'log',
      to: 'ops@example.com',
      subject: 'Disk',
      body: 'almost full',
      data: { host: 'a1' },
    };
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: notification,
    });
    assert.equal(response.statusCode, 200);
    const { id } = response.json<{ id: string }>();
    const line = await s.logs.waitFor(
      (l) => l.msg === 'notification delivered on the log channel' && l.taskId === id,
    );
    assert.equal(line.task, 'notifications.log');
    assert.deepEqual(
      { to: line.to, subject: line.subject, body: line.body, data: line.data },
      {
        to: 'ops@example.com',
        subject: 'Disk',
        body: 'almost full',
        data: { host: 'a1' },
      },
    );
  });

  it('keeps a client request id, and logs with it', async () => {
    const s = await service();
    const response = await s.app.inject({
      method: 'GET',
      url: '/api/tasks/999',
      headers: { 'x-request-id': 'req-42' },
    });
    assert.equal(response.headers['x-request-id'], 'req-42');
    await s.logs.waitFor((l) => l.reqId === 'req-42' && l.msg === 'request completed');
  });
});

describe('the status API', () => {
  it('shows a task with exactly the documented fields', async () => {
    const s = await service();
    const { id } = (await s.app.inject({ method: 'POST', url: '/api/notifications/notify' })).json<{
      id: string;
    }>();
    await nextEvent(s.runtime, 'task:success', 5000, ({ task }) => task.id === id);
    const view = (await s.app.inject(`/api/tasks/${id}`)).json<TaskView>();
    assert.deepEqual(Object.keys(view), TASK_FIELDS);
    assert.equal(view.id, id);
    assert.equal(view.name, 'notifications.demo');
    assert.equal(view.state, 'succeeded');
    assert.equal(view.attempts, 1);
    assert.equal(view.maxAttempts, 5);
    for (const at of [view.createdAt, view.startedAt, view.finishedAt]) assert.match(at ?? '', ISO);
    assert.equal(view.lastError, null);
    assert.equal(view.result, null);
    assert.equal(view.progress, null);
  });

  it('shows the last recorded error of a task, and retries and cancels it', async () => {
    // The demo works longer than the task timeout (REQUEST_TIMEOUT), so its attempt fails.
    const s = await service({ notifyDemoDelay: 5000, taskTimeout: 20 });
    const { id } = (await s.app.inject({ method: 'POST', url: '/api/notifications/notify' })).json<{
      id: string;
    }>();
    await nextEvent(s.runtime, 'task:retry', 5000, ({ task }) => task.id === id);
    const failed = (await s.app.inject(`/api/tasks/${id}`)).json<TaskView>();
    assert.equal(failed.state, 'queued');
    assert.equal(failed.attempts, 1);
    assert.deepEqual(Object.keys(failed.lastError ?? {}), ['name', 'message', 'attempt', 'at']);
    assert.equal(failed.lastError?.name, 'TaskTimeoutError');
    assert.match(failed.lastError?.message ?? '', /timeout of 20 ms/);
    assert.equal(failed.lastError?.attempt, 1);
    assert.match(failed.lastError?.at ?? '', ISO);

    const retryQueued = await s.app.inject({ method: 'POST', url: `/api/tasks/${id}/retry` });
    assert.equal(retryQueued.statusCode, 409);
    assert.equal(retryQueued.json().error.code, 'TASK_NOT_RETRYABLE');
    const canceled = await s.app.inject({ method: 'POST', url: `/api/tasks/${id}/cancel` });
    assert.equal(canceled.statusCode, 200);
    assert.equal(canceled.json<TaskView>().state, 'canceled');
    const again = await s.app.inject({ method: 'POST', url: `/api/tasks/${id}/cancel` });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().error.code, 'TASK_NOT_CANCELABLE');
    const retried = await s.app.inject({ method: 'POST', url: `/api/tasks/${id}/retry` });
    assert.equal(retried.statusCode, 200);
    assert.deepEqual(
      [retried.json<TaskView>().state, retried.json<TaskView>().lastError?.name],
      ['queued', 'TaskTimeoutError'],
    );
  });

  it('lists tasks newest first, filtered and paged with a cursor', async () => {
    const s = await service();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(((await s.runtime.enqueue('elsewhere', { i })) as Task).id);
    ids.push(((await s.runtime.enqueue('other', {})) as Task).id);
    const first = (await s.app.inject('/api/tasks?name=elsewhere&state=queued&limit=2')).json<{
      tasks: TaskView[];
      nextCursor: string;
    }>();
    assert.deepEqual(
      first.tasks.map((t) => t.id),
      [ids[2], ids[1]],
    );
    assert.deepEqual(Object.keys(first.tasks[0]!), TASK_FIELDS);
    const second = (
      await s.app.inject(`/api/tasks?name=elsewhere&limit=2&cursor=${first.nextCursor}`)
    ).json<{ tasks: TaskView[]; nextCursor: null }>();
    assert.deepEqual(
      second.tasks.map((t) => t.id),
      [ids[0]],
    );
    assert.equal(second.nextCursor, null);
    const all = (await s.app.inject('/api/tasks')).json<{ tasks: TaskView[] }>();
    assert.equal(all.tasks.length, 4);
  });
});

describe('health and metrics', () => {
  let s: TestService;
  before(async () => {
    s = await testService();
  });
  after(() => s.close());

  it('answers /healthz and /readyz', async () => {
    assert.deepEqual((await s.app.inject('/healthz')).json(), { ok: true });
    assert.deepEqual((await s.app.inject('/readyz')).json(), { ok: true });
  });

  it('exports task counts, attempt durations and queue lag in Prometheus text', async () => {
    const done = nextEvent(s.runtime, 'task:success');
    await s.app.inject({ method: 'POST', url: '/api/notifications/notify' });
    await done;
    const response = await s.app.inject('/metrics');
    assert.equal(response.statusCode, 200);
    assert.match(response.headers['content-type'] as string, /^text\/plain/);
    const text = response.body;
    assert.match(text, /^offload_tasks\{name="notifications\.demo",state="succeeded"\} 1$/m);
    assert.match(text, /^offload_tasks\{name="notifications\.demo",state="failed"\} 0$/m);
    assert.match(
      text,
      /^offload_task_attempt_duration_seconds_count\{name="notifications\.demo",outcome="success"\} 1$/m,
    );
    assert.match(text, /^offload_queue_lag_seconds \d/m);
    assert.match(text, /^offload_store_up 1$/m);
    assert.match(text, /^# TYPE offload_task_retries_total counter$/m);
    assert.match(text, /^# TYPE offload_task_failures_total counter$/m);
  });
});
