import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteStore } from '../../../../packages/offload/src/sqlite/index.js';
import { tempDir, testService } from '../fixtures/service-harness.js';
import { nextEvent } from '../../../../packages/offload/test/helpers.js';

const temp = tempDir();
after(() => temp.remove());

describe('a store that cannot take tasks', () => {
  it('answers 503 STORE_UNAVAILABLE, loses nothing accepted, and recovers when the store does', async () => {
    const path = join(temp.dir, 'locked.db');
    // A short busy timeout: a write waits this long for the lock, then fails.
    const s = await testService({}, sqliteStore({ path, busyTimeout: 25 }));
    try {
      const url = await s.listen();
      const notify = () => fetch(`${url}/api/notifications/notify`, { method: 'POST' });
      const accepted = (await (await notify()).json()) as { id: string };
      await nextEvent(s.runtime, 'task:success', 5000, ({ task }) => task.id === accepted.id);

      // Another connection takes the write lock and keeps it: every write of the service fails.
      const holder = new Database(path);
      holder.exec('BEGIN EXCLUSIVE');
      try {
        for (let i = 0; i < 3; i++) {
          const refused = await notify();
          assert.equal(refused.status, 503);
          assert.equal(refused.headers.get('retry-after'), '5');
          const body = (await refused.json()) as {
            ok: boolean;
            error: { code: string; message: string };
          };
          assert.equal(body.ok, false);
          assert.equal(body.error.code, 'STORE_UNAVAILABLE');
          assert.match(body.error.message, /could not take the task/);
        }
        assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the process stays up');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }

      const recovered = await notify();
      assert.equal(recovered.status, 200);
      const { id } = (await recovered.json()) as { id: string };
      await nextEvent(s.runtime, 'task:success', 5000, ({ task }) => task.id === id);
      const tasks = (await s.runtime.list()).tasks;
      assert.deepEqual(
        tasks.map((t) => [t.id, t.state]),
        [
          [id, 'succeeded'],
          [accepted.id, 'succeeded'],
        ],
        'the accepted tasks are stored and ran; the refused ones were never stored',
      );
      // The first refusal is logged with its request id and the driver's code, without stacks;
      // the next ones are counted (see test/service-fault-log.test.ts).
      const logged = s.logs.lines.filter((l) =>
        l.msg.startsWith('store unavailable: answered 503'),
      );
      assert.equal(logged.length, 1, s.logs.tail());
      assert.equal(typeof logged[0]!.reqId, 'string');
      assert.match((logged[0]!.fault as { code: string }).code, /^SQLITE_BUSY/);
      assert.ok(!JSON.stringify(logged).includes('"stack"'));
    } finally {
      await s.close();
    }
  });
});
