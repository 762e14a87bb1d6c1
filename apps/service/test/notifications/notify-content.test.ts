/**
 * A notification to several recipients stores its content once, in a content task the deliveries
 * read when they run: on a real SQLite file, what one request stores stays near its content's
 * size, every recipient still gets all of it, deliveries whose payload carries the content still
 * run, the content outlives every delivery, and a request that would store too much is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import {
  createRuntime,
  HOUR,
  memoryStore,
  type Task,
} from '../../../../packages/offload/src/index.js';
import { sqliteStore } from '../../../../packages/offload/src/sqlite/index.js';
import {
  CONTENT_TASK,
  DEFAULT_CHANNEL_SETTINGS,
  MAX_NOTIFICATION_BYTES,
  Notifications,
  parseNotifyRequest,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import type { NotificationView } from '../../src/notification-view.js';
import {
  startHttpPeer,
  type HttpPeer,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import { tempDir, testService, type TestService } from '../fixtures/service-harness.js';
import { captureLogger, fakeClock, finished } from '../../../../packages/offload/test/helpers.js';

const temp = tempDir();
after(() => temp.remove());

let closing: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(closing.map((x) => x.close()));
  closing = [];
});

const DELIVERED = 'notification delivered on the log channel';

async function sqliteService(file: string): Promise<{ s: TestService; path: string }> {
  const path = join(temp.dir, file);
  const s = await testService({}, sqliteStore({ path }));
  closing.push(s);
  return { s, path };
}

/** Rows and payload bytes in the SQLite file, read past the service as an operator would. */
function storedPayloads(path: string): { rows: number; bytes: number } {
  const db = new Database(path, { readonly: true });
  try {
    return db
      .prepare(
        'SELECT count(*) AS rows, coalesce(sum(length(CAST(payload AS BLOB))), 0) AS bytes FROM offload_tasks',
      )
      .get() as { rows: number; bytes: number };
  } finally {
    db.close();
  }
}

async function view(s: TestService, id: string): Promise<NotificationView> {
  const response = await s.app.inject(`/api/notifications/${id}`);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<NotificationView>();
}

describe('a notification to several recipients', { timeout: 30_000 }, () => {
  it('stores its content once, and delivers all of it to each of 100 recipients', async () => {
    const { s, path } = await sqliteService('hundred.db');
    const content = { subject: 'Weekly report', body: 'b'.repeat(10_000), data: { week: 42 } };
    const contentBytes = Buffer.byteLength(JSON.stringify(content));
    const to = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: { channel: 'log', to, ...content },
    });
    assert.equal(response.statusCode, 200, response.body);
    const { id } = response.json<{ id: string }>();

    const stored = storedPayloads(path);
    assert.equal(stored.rows, 101, 'one content task and 100 deliveries');
    assert.ok(
      stored.bytes < 2 * contentBytes,
      `${stored.bytes} bytes of payloads stored for ${contentBytes} bytes of content`,
    );

    const lines = await s.logs.waitForCount((l) => l.msg === DELIVERED, 100, 10_000);
    assert.deepEqual(lines.map((l) => l.to).sort(), [...to].sort());
    for (const line of lines) {
      assert.deepEqual({ subject: line.subject, body: line.body, data: line.data }, content);
    }

    const listed = await view(s, id);
    assert.equal(listed.channel, 'log');
    assert.deepEqual(
      listed.deliveries.map((d) => [d.index, d.to]),
      to.map((name, i) => [i, name]),
    );
    for (const delivery of listed.deliveries) await finished(s.runtime, delivery.id);
    assert.ok((await view(s, id)).deliveries.every((d) => d.state === 'succeeded'));

    const [holder] = (await s.runtime.list({ name: CONTENT_TASK })).tasks;
    assert.equal(holder!.state, 'queued', 'the content is kept after its deliveries finished');
    assert.ok(holder!.runAt.getTime() > Date.now() + HOUR);
    assert.equal((await view(s, holder!.id)).id, id, 'its task id finds the notification');
  });

  it('sends the content and the time it was accepted with each webhook', async () => {
    const peer: HttpPeer = await startHttpPeer();
    closing.push(peer);
    const settings = readChannelSettings((name) =>
      name === 'WEBHOOK_SECRET' ? `whsec_${randomBytes(32).toString('base64')}` : undefined,
    );
    const s = await testService({
      channels: {
        ...DEFAULT_CHANNEL_SETTINGS,
        webhook: settings.webhook,
        allowPrivateHosts: ['127.0.0.1'],
      },
    });
    closing.push(s);
    const to = ['a', 'b', 'c'].map((path) => `${peer.url}/${path}`);
    const content = { subject: 'Deploy', body: 'v2 is out', data: { version: 2 } };
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: { channel: 'webhook', to, ...content },
    });
    assert.equal(response.statusCode, 200, response.body);
    const { id } = response.json<{ id: string }>();
    for (const delivery of (await view(s, id)).deliveries) {
      assert.equal((await finished(s.runtime, delivery.id)).state, 'succeeded');
    }
    const messages = peer.requests.map(
      (r) => JSON.parse(r.body.toString()) as { timestamp: string; data: object },
    );
    assert.deepEqual(peer.requests.map((r) => r.url).sort(), ['/a', '/b', '/c']);
    for (const message of messages) {
      assert.deepEqual(message.data, { notification: id, ...content });
      assert.equal(message.timestamp, messages[0]!.timestamp);
      assert.ok(!Number.isNaN(Date.parse(message.timestamp)));
    }
  });

  it('runs deliveries whose stored payload carries the content', async () => {
    const path = join(temp.dir, 'inline.db');
    const store = sqliteStore({ path });
    await store.open(); // creates the schema
    await store.close();
    const notification = 'ntf_BBBBBBBBBBBBBBBBBBBBBB';
    const db = new Database(path);
    try {
      const insert = db.prepare(
        `INSERT INTO offload_tasks (name, payload, state, max_attempts, key, run_at, created_at)
         VALUES ('notifications.log', ?, 'queued', 5, ?, ?, ?)`,
      );
      for (const index of [0, 1]) {
        const payload = {
          notification,
          index,
          request: 'digest',
          createdAt: new Date().toISOString(),
          to: `inline-${index}`,
          subject: 'Inline',
          body: 'carried by each delivery',
          html: null,
          data: { index },
        };
        const now = Date.now();
        insert.run(JSON.stringify(payload), `notification:${notification}:${index}`, now, now);
      }
    } finally {
      db.close();
    }
    const s = await testService({}, sqliteStore({ path }));
    closing.push(s);
    const lines = await s.logs.waitForCount((l) => l.msg === DELIVERED, 2);
    assert.deepEqual(
      lines.map((l) => [l.to, l.subject, l.body, l.data]).sort(),
      [0, 1].map((i) => [`inline-${i}`, 'Inline', 'carried by each delivery', { index: i }]),
    );
    const listed = await view(s, notification);
    for (const delivery of listed.deliveries) await finished(s.runtime, delivery.id);
    assert.deepEqual(
      (await view(s, notification)).deliveries.map((d) => [d.to, d.state]),
      [
        ['inline-0', 'succeeded'],
        ['inline-1', 'succeeded'],
      ],
    );
  });

  it('refuses a request that would store more than the limit, and stores nothing', async () => {
    const { s, path } = await sqliteService('limit.db');
    // 100 long labels and 31 KB of data: a body under the 64 KiB body limit, but each delivery
    // names its recipient, so the tasks would store about 69 KB.
    const payload = {
      channel: 'log',
      to: Array.from({ length: 100 }, (_, i) => `${i}`.padStart(300, 'r')),
      data: { blob: 'd'.repeat(31_000) },
    };
    assert.ok(Buffer.byteLength(JSON.stringify(payload)) < 64 * 1024);
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload,
    });
    assert.equal(response.statusCode, 400, response.body);
    const body = response.json<{ ok: boolean; error: { code: string; message: string } }>();
    assert.equal(body.ok, false);
    assert.equal(body.error.code, 'INVALID_NOTIFICATION');
    assert.match(
      body.error.message,
      new RegExp(
        `^this notification would store \\d+ bytes \\(its content and 100 deliveries\\); one notification stores at most ${MAX_NOTIFICATION_BYTES} bytes`,
      ),
    );
    assert.equal(storedPayloads(path).rows, 0);

    const fewer = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: { ...payload, to: payload.to.slice(0, 50) },
    });
    assert.equal(fewer.statusCode, 200, 'the same content to 50 recipients fits');
  });
});

describe('the content task', () => {
  /** Log deliveries on a memory store with a clock the test moves; nothing runs but `drain`. */
  function setup() {
    const clock = fakeClock();
    const logger = captureLogger();
    const notifications = new Notifications({ demoDelay: 0 });
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: notifications.tasks,
      clock,
      logger,
    });
    notifications.attach(runtime);
    closing.push({ close: () => runtime.stop() });
    return { clock, logger, notifications, runtime };
  }

  it('is kept until none of its deliveries is queued or running, and finishes after them', async () => {
    const { clock, notifications, runtime } = setup();
    const request = parseNotifyRequest(
      { channel: 'log', to: ['early', 'late'], body: 'hello' },
      notifications.rules,
    );
    const [content, early, late] = notifications.plan(
      await notifications.prepare(request),
      'ntf_CCCCCCCCCCCCCCCCCCCCCC',
      new Date(clock.now()),
    );
    const wait = (await runtime.enqueueMany([content!])).at(0)!.runAt.getTime() - clock.now();
    assert.ok(wait > HOUR, 'it first runs after the deliveries could have been retried');
    // The second delivery starts later than the content task first runs.
    const stored = await runtime.enqueueMany([
      early!,
      { ...late!, options: { ...late!.options, delay: 2 * wait } },
    ]);
    const get = async (id: string): Promise<Task> => (await runtime.get(id))!;
    const [holder] = (await runtime.list({ name: CONTENT_TASK })).tasks;

    await runtime.drain();
    assert.equal((await get(stored[0]!.id)).state, 'succeeded');
    clock.advance(wait);
    await runtime.drain();
    let kept = await get(holder!.id);
    assert.equal(kept.state, 'queued', 'a delivery has not run yet: the content is kept');
    assert.equal(kept.attempts, 0, 'waiting uses up no attempt');
    assert.match(kept.errors.at(-1)!.message, /have not finished \(1 of 2\)/);

    clock.advance(wait);
    await runtime.drain();
    const last = await get(stored[1]!.id);
    assert.equal(last.state, 'succeeded');
    kept = await get(holder!.id);
    assert.equal(kept.state, 'queued', 'it ran beside the last delivery, and waits once more');

    clock.advance(HOUR);
    await runtime.drain();
    const done = await get(holder!.id);
    assert.equal(done.state, 'succeeded');
    assert.ok(done.finishedAt! >= last.finishedAt!, 'it is pruned after every delivery');
  });

  it('fails a delivery at once, saying so, when its content is not stored', async () => {
    const { runtime } = setup();
    const task = await runtime.enqueue('notifications.log', {
      notification: 'ntf_DDDDDDDDDDDDDDDDDDDDDD',
      index: 0,
      to: 'ops',
      shared: true,
    });
    await runtime.drain();
    const failed = (await runtime.get(task.id))!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 1);
    assert.match(
      failed.errors.at(-1)!.message,
      /the content of notification ntf_DDDDDDDDDDDDDDDDDDDDDD is not stored/,
    );
  });
});
