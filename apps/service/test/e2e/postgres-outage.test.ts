import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { testService } from '../fixtures/service-harness.js';
import { TcpProxy } from '../../../../packages/offload/test/fixtures/tcp-proxy.js';
import { nextEvent } from '../../../../packages/offload/test/helpers.js';
import {
  dropSchema,
  TEST_DATABASE_URL,
  uniqueSchema,
} from '../../../../packages/offload/test/pg-helpers.js';

describe('postgres going away and coming back', () => {
  const schema = uniqueSchema('outage');
  after(() => dropSchema(schema));

  it('answers 503 while the database is away, and recovers without a restart', async () => {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await TcpProxy.start(Number(target.port || 5432));
    target.host = `127.0.0.1:${proxy.port}`;
    const s = await testService({
      databaseUrl: target.toString(),
      databaseSchema: schema,
      notifyDemoDelay: 0,
    });
    try {
      const notify = () => s.app.inject({ method: 'POST', url: '/api/notifications/notify' });
      const first = await notify();
      assert.equal(first.statusCode, 200);
      await nextEvent(s.runtime, 'task:success', 5000);
      const metrics = await s.app.inject('/metrics');
      assert.equal(metrics.statusCode, 200);
      assert.match(metrics.body, /offload_tasks\{name="notifications\.demo",state="succeeded"\} 1/);

      proxy.cut();
      for (let i = 0; i < 3; i++) {
        const refused = await notify();
        assert.equal(refused.statusCode, 503, refused.body);
        assert.equal(refused.json<{ error: { code: string } }>().error.code, 'STORE_UNAVAILABLE');
      }
      assert.equal((await s.app.inject('/readyz')).statusCode, 503);
      assert.equal((await s.app.inject('/healthz')).statusCode, 200, 'the process stays up');

      proxy.restore();
      // The connection that holds this worker's liveness lock and LISTENs reconnects by itself.
      await s.logs.waitForCount(
        (line) => line.msg === 'PostgreSQL liveness connection is back',
        1,
        10_000,
      );
      const answer = await notify();
      assert.equal(answer.statusCode, 200, answer.body);
      const { id } = answer.json<{ id: string }>();
      await nextEvent(s.runtime, 'task:success', 10_000, ({ task }) => task.id === id);
      assert.equal((await s.app.inject('/readyz')).statusCode, 200);
      const ids = (await s.runtime.list()).tasks.map((t) => [t.id, t.state]);
      assert.deepEqual(
        ids,
        [
          [id, 'succeeded'],
          [first.json<{ id: string }>().id, 'succeeded'],
        ],
        'what was accepted ran; what was refused was never stored',
      );
    } finally {
      await s.close();
      await proxy.close();
    }
  });
});
