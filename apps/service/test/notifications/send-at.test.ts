/** `sendAt` on notify: deliveries queued for later, refused when malformed or too far ahead. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DAY, HOUR, type TaskView } from '../../../../packages/offload/src/index.js';
import { CONTENT_TASK } from '../../../../packages/notifications/src/index.js';
import { finished } from '../../../../packages/offload/test/helpers.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const later = (ms: number) => new Date(Date.now() + ms);

describe('notify with sendAt', () => {
  let s: TestService;
  before(async () => {
    s = await testService();
  });
  after(() => s.close());

  async function notify(body: object, headers: Record<string, string> = {}) {
    return s.app.inject({ method: 'POST', url: '/api/notifications/notify', body, headers });
  }

  it('queues the delivery for that time, shown queued by the status API', async () => {
    const sendAt = later(2 * HOUR);
    // Another zone's offset, and a fraction of a second: the same instant.
    const offset = new Date(sendAt.getTime() + 90 * 60_000).toISOString().replace('Z', '+01:30');
    const response = await notify({ channel: 'log', to: 'ops', body: 'later', sendAt: offset });
    assert.equal(response.statusCode, 200, response.body);
    const { id } = response.json<{ id: string }>();
    const view = (await s.app.inject(`/api/tasks/${id}`)).json<TaskView>();
    assert.deepEqual([view.state, view.attempts, view.startedAt], ['queued', 0, null]);
    assert.deepEqual((await s.runtime.get(id))?.runAt, sendAt);
  });

  it('schedules the demo notification when sendAt is all the body holds', async () => {
    const sendAt = later(DAY);
    const response = await notify({ sendAt: sendAt.toISOString() });
    assert.equal(response.statusCode, 200, response.body);
    const task = await s.runtime.get(response.json<{ id: string }>().id);
    assert.deepEqual(
      [task?.name, task?.state, task?.runAt],
      ['notifications.demo', 'queued', sendAt],
    );
  });

  it('delivers at once for a time in the past', async () => {
    const asked = Date.now();
    const response = await notify({ channel: 'log', to: 'ops', sendAt: '2001-02-03T04:05:06Z' });
    assert.equal(response.statusCode, 200, response.body);
    const task = await finished(s.runtime, response.json<{ id: string }>().id);
    assert.equal(task.state, 'succeeded');
    assert.ok(task.runAt.getTime() >= asked, 'due when asked, not in 2001');
  });

  it('queues every delivery of several recipients for that time, and keeps their content from then', async () => {
    const sendAt = later(3 * HOUR);
    const response = await notify(
      { channel: 'log', to: ['a', 'b'], body: 'hi', sendAt: sendAt.toISOString() },
      { 'idempotency-key': 'send-at-several' },
    );
    assert.equal(response.statusCode, 200, response.body);
    const { id } = response.json<{ id: string }>();
    const deliveries = (await s.runtime.list({ keyPrefix: `notification:${id}:` })).tasks;
    assert.equal(deliveries.length, 2);
    for (const delivery of deliveries) {
      assert.deepEqual([delivery.state, delivery.runAt], ['queued', sendAt]);
    }
    const content = (await s.runtime.list({ name: CONTENT_TASK })).tasks.find(
      (task) => task.key === `notification-content:${id}`,
    );
    assert.ok(content && content.runAt.getTime() > sendAt.getTime() + HOUR);

    // The same request again is the same notification; another time is another request.
    const again = await notify(
      { channel: 'log', to: ['a', 'b'], body: 'hi', sendAt: sendAt.toISOString() },
      { 'idempotency-key': 'send-at-several' },
    );
    assert.equal(again.json<{ id: string }>().id, id);
    const moved = await notify(
      { channel: 'log', to: ['a', 'b'], body: 'hi', sendAt: later(4 * HOUR).toISOString() },
      { 'idempotency-key': 'send-at-several' },
    );
    assert.equal(moved.statusCode, 422);
  });

  const refused: [string, unknown, RegExp][] = [
    [
      'more than a year ahead',
      later(366 * DAY).toISOString(),
      /^sendAt is more than a year ahead \(/,
    ],
    [
      'without a time zone',
      '2030-01-01T09:00:00',
      /^sendAt must be an RFC 3339 time with a time zone/,
    ],
    ['a date only', '2030-01-01', /^sendAt must be an RFC 3339 time/],
    ['a day that does not exist', '2030-02-30T09:00:00Z', /, got "2030-02-30T09:00:00Z"$/],
    ['an hour out of range', '2030-01-01T24:00:00Z', /^sendAt must be an RFC 3339 time/],
    ['an offset out of range', '2030-01-01T09:00:00+24:00', /^sendAt must be an RFC 3339 time/],
    ['words', 'tomorrow at nine', /^sendAt must be an RFC 3339 time/],
    ['a number', 1767254400000, /^sendAt must be an RFC 3339 time as a string, .*got a number$/],
  ];
  for (const [what, sendAt, message] of refused) {
    it(`refuses ${what} with a 400 naming sendAt`, async () => {
      const before = (await s.runtime.list({ limit: 1000 })).tasks.length;
      const response = await notify({ channel: 'log', to: 'ops', sendAt });
      assert.equal(response.statusCode, 400, response.body);
      const { ok, error } = response.json<{
        ok: boolean;
        error: { code: string; message: string };
      }>();
      assert.deepEqual([ok, error.code], [false, 'INVALID_NOTIFICATION']);
      assert.match(error.message, message);
      assert.equal((await s.runtime.list({ limit: 1000 })).tasks.length, before, 'nothing stored');
    });
  }
});
