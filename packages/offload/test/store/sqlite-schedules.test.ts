import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteStore } from '../../src/sqlite/index.js';
import { T0, tempDir } from '../helpers.js';
import { fireEverySecondWithAKill } from './schedule-processes.js';

describe('sqlite: schedules', () => {
  const temp = tempDir();
  after(() => temp.remove());

  it('looks for due schedules without taking the write lock when none is due', async () => {
    const path = join(temp.dir, 'look.db');
    const store = sqliteStore({ path, busyTimeout: 50 });
    await store.open();
    const writer = new Database(path);
    try {
      await store.setSchedule(
        { name: 's', rule: '{}', task: 'job', payload: '{}', options: '{}', nextRunAt: T0 + 10 },
        T0,
      );
      writer.exec('BEGIN IMMEDIATE'); // another process writing at length
      const plan = () => ({ tasks: [], lastRunAt: null, nextRunAt: T0 + 20 });
      assert.deepEqual(await store.fireSchedules({ now: T0, limit: 10, plan }), {
        fired: [],
        nextRunAt: T0 + 10,
      });
      await assert.rejects(store.fireSchedules({ now: T0 + 10, limit: 10, plan }), {
        code: 'STORE_UNAVAILABLE',
        reason: 'locked',
      });
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
      await store.close();
    }
  });

  it('fires an every-second schedule exactly once between two processes on one file, one SIGKILLed midway', async () => {
    await fireEverySecondWithAKill({
      url: `sqlite:${join(temp.dir, 'offload.db')}`,
      workers: 2,
    });
  });
});
