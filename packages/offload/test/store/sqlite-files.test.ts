import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StoreUnavailableError } from '../../src/errors/store-unavailable.js';
import { sqliteStore } from '../../src/sqlite/index.js';
import { tempDir } from '../../../../apps/service/test/fixtures/service-harness.js';
import { newStoredTask } from '../helpers.js';

const temp = tempDir();
after(() => temp.remove());

/**
 * A process that believes it is the last user of a database deletes its `-wal` and `-shm` when it
 * closes; a restore or a careless script may replace them. Commits would then go to files no other
 * process sees, lost when this one ends: the store must refuse them.
 */
describe('sqlite store: the -wal and -shm files under the open store', () => {
  for (const suffix of ['-wal', '-shm']) {
    for (const change of ['deleted', 'replaced'] as const) {
      it(`refuses writes, and ping, once its ${suffix} is ${change}`, async () => {
        const path = join(temp.dir, `${change}${suffix}.db`);
        const store = sqliteStore({ path });
        await store.open();
        try {
          await store.enqueue([newStoredTask()]);
          if (change === 'deleted') rmSync(path + suffix);
          else {
            writeFileSync(`${path}.other`, '');
            renameSync(`${path}.other`, path + suffix);
          }
          const moved = (error: Error & { code?: string; reason?: string }) => {
            assert.ok(error instanceof StoreUnavailableError);
            assert.equal(error.code, 'STORE_UNAVAILABLE');
            assert.equal(error.reason, 'file-moved');
            assert.ok(error.message.includes(path + suffix), error.message);
            assert.match(
              error.message,
              new RegExp(`was ${change === 'deleted' ? 'deleted' : 'replaced'}`),
            );
            return true;
          };
          // The watcher's event may come a moment after the change: the store checks by stat
          // once told, so wait for the first refusal, then every write and ping refuse.
          const deadline = Date.now() + 5000;
          for (;;) {
            try {
              await store.enqueue([newStoredTask()]);
            } catch (error) {
              moved(error as Error);
              break;
            }
            assert.ok(Date.now() < deadline, `a write was accepted into a ${change} ${suffix}`);
            await new Promise((resolve) => setImmediate(resolve));
          }
          await assert.rejects(store.enqueue([newStoredTask()]), moved);
          await assert.rejects(store.ping(), moved);
        } finally {
          await store.close();
        }
      });
    }
  }
});
