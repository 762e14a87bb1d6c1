import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { finished } from '../../../../packages/offload/test/helpers.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const API_KEY = 'a-long-enough-key-123';
const auth = { authorization: `Bearer ${API_KEY}` };

let services: TestService[] = [];
afterEach(async () => {
  await Promise.all(services.map((s) => s.close()));
  services = [];
});

async function service(): Promise<TestService> {
  const s = await testService({ apiKey: API_KEY });
  services.push(s);
  return s;
}

describe('pause and resume by task name', () => {
  it('pauses a task name for the runner until it is resumed, behind the API key', async () => {
    const s = await service();
    const refused = await s.app.inject({
      method: 'POST',
      url: '/api/task-names/notifications.demo/pause',
    });
    assert.equal(refused.statusCode, 401);
    assert.equal((await s.app.inject('/api/task-names/paused')).statusCode, 401);

    const paused = await s.app.inject({
      method: 'POST',
      url: '/api/task-names/notifications.demo/pause',
      headers: auth,
    });
    assert.equal(paused.statusCode, 200, paused.body);
    assert.deepEqual(paused.json(), { name: 'notifications.demo', paused: true, changed: true });
    const again = await s.app.inject({
      method: 'POST',
      url: '/api/task-names/notifications.demo/pause',
      headers: auth,
    });
    assert.equal(again.json<{ changed: boolean }>().changed, false);
    const listed = await s.app.inject({ url: '/api/task-names/paused', headers: auth });
    const { paused: names } = listed.json<{ paused: { name: string; pausedAt: string }[] }>();
    assert.deepEqual(
      names.map((p) => p.name),
      ['notifications.demo'],
    );
    assert.ok(!Number.isNaN(Date.parse(names[0]!.pausedAt)));

    const notified = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      headers: auth,
    });
    const { id } = notified.json<{ id: string }>();
    await s.runtime.drain();
    assert.equal((await s.runtime.get(id))?.state, 'queued', 'a paused name is not claimed');

    const resumed = await s.app.inject({
      method: 'POST',
      url: '/api/task-names/notifications.demo/resume',
      headers: auth,
    });
    assert.deepEqual(resumed.json(), { name: 'notifications.demo', paused: false, changed: true });
    assert.equal((await finished(s.runtime, id)).state, 'succeeded');
    const empty = await s.app.inject({ url: '/api/task-names/paused', headers: auth });
    assert.deepEqual(empty.json(), { paused: [] });
  });

  it('answers 405 naming POST for a GET on pause', async () => {
    const s = await service();
    const response = await s.app.inject({
      url: '/api/task-names/notifications.demo/pause',
      headers: auth,
    });
    assert.equal(response.statusCode, 405);
    assert.equal(response.headers.allow, 'POST');
  });
});
