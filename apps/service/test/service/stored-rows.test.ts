/**
 * Rows written by hand or by an older version, in a real SQLite file: a payload or errors that are
 * not JSON, errors of the wrong shape, a state outside the CHECK list, text where numbers belong.
 * The service answers about every one of them (no 5xx), the runner goes on running the others,
 * and a queued task whose payload is not JSON fails with a clear error.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteStore } from '../../../../packages/offload/src/sqlite/index.js';
import { checkAnswer } from '../fixtures/hostile.js';
import { tempDir, testService } from '../fixtures/service-harness.js';
import { finished } from '../../../../packages/offload/test/helpers.js';

const temp = tempDir();
after(() => temp.remove());

const NOW = Date.now();
const NOTIFICATION = 'ntf_AAAAAAAAAAAAAAAAAAAAAA';

/** [what, columns that differ from a good queued demo task] */
const ROWS: [string, Record<string, unknown>][] = [
  ['a queued task whose payload is not JSON', { payload: '{not json' }],
  ['a state outside the CHECK list', { state: 'done', finished_at: NOW }],
  ['another unknown state, on a log delivery', { state: 'archived', name: 'notifications.log' }],
  ['errors that are not JSON', { state: 'failed', errors: 'not json', finished_at: NOW }],
  [
    'errors of the wrong shape',
    { state: 'failed', errors: '[null, 1, {"at":"yesterday"}, {"message":5}]', finished_at: NOW },
  ],
  ['errors that are an object', { state: 'failed', errors: '{"a":1}', finished_at: NOW }],
  [
    'times that are text',
    { state: 'succeeded', created_at: 'yesterday', started_at: 'x', finished_at: '' },
  ],
  ['counts that are text', { state: 'failed', attempts: 'many', max_attempts: 'five' }],
  ['a result that is not JSON', { state: 'succeeded', result: '{half', finished_at: NOW }],
  ['a name that is a number', { name: 123, state: 'canceled', finished_at: NOW }],
  ['a run-at that is text', { run_at: 'soon' }],
  [
    'a delivery whose recipient is null',
    {
      name: 'notifications.log',
      payload: '{"to":null}',
      key: `notification:${NOTIFICATION}:0`,
      state: 'succeeded',
      finished_at: NOW,
    },
  ],
  [
    'a delivery whose payload is a string',
    { name: 'notifications.log', payload: '"hello"', key: `notification:${NOTIFICATION}:1` },
  ],
  [
    'a delivery whose result has the wrong shape',
    {
      name: 'notifications.webhook',
      payload: '{"to":{"endpoint":5}}',
      key: `notification:${NOTIFICATION}:x`,
      state: 'succeeded',
      result: '{"provider":1}',
      finished_at: NOW,
    },
  ],
  ['a good queued task', {}],
];

/** Writes the rows with a raw connection, past the CHECK constraint; returns their ids. */
function writeRows(path: string): string[] {
  const db = new Database(path);
  try {
    db.pragma('ignore_check_constraints = ON');
    return ROWS.map(([, columns]) => {
      const row: Record<string, unknown> = {
        name: 'notifications.demo',
        payload: '{}',
        state: 'queued',
        max_attempts: 1,
        run_at: NOW - 1000,
        created_at: NOW - 1000,
        ...columns,
      };
      const names = Object.keys(row);
      const { lastInsertRowid } = db
        .prepare(
          `INSERT INTO offload_tasks (${names.join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})`,
        )
        .run(row);
      return String(lastInsertRowid);
    });
  } finally {
    db.close();
  }
}

describe('stored rows written by hand or by an older version', () => {
  it('are answered about without a 5xx; the runner goes on; a bad payload fails clearly', async () => {
    const path = join(temp.dir, 'old.db');
    const store = sqliteStore({ path });
    await store.open(); // creates the schema
    await store.close();
    const ids = writeRows(path);
    const byWhat = new Map(ROWS.map(([what], i) => [what, ids[i]!]));

    const s = await testService({ notifyDemoDelay: 5 }, sqliteStore({ path }));
    try {
      const url = await s.listen();
      const good = await finished(s.runtime, byWhat.get('a good queued task')!);
      assert.equal(good.state, 'succeeded', 'the runner runs the good task');
      const bad = await finished(s.runtime, byWhat.get('a queued task whose payload is not JSON')!);
      assert.equal(bad.state, 'failed');
      assert.match(bad.errors.at(-1)!.message, /stored payload is not valid JSON/);

      let requests = 0;
      const get = async (method: string, path: string) => {
        requests += 1;
        const response = await fetch(`${url}${path}`, { method });
        const answer = {
          statusCode: response.status,
          body: await response.text(),
          headers: Object.fromEntries(response.headers),
        };
        checkAnswer(`${method} ${path}`, answer, method);
        return answer;
      };
      // The metrics count each state from its own index, which a state outside the CHECK list is
      // in none of: the scrape still answers, with the tasks it can count.
      const metrics = await fetch(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(
        await metrics.text(),
        /offload_tasks\{name="notifications\.log",state="failed"\} \d/,
      );
      for (const [what, id] of byWhat) {
        const task = await get('GET', `/api/tasks/${id}`);
        assert.equal(task.statusCode, 200, `${what}: ${task.body}`);
        await get('GET', `/api/notifications/${id}`);
        await get('POST', `/api/tasks/${id}/retry`);
        await get('POST', `/api/tasks/${id}/cancel`);
      }
      // A task in an unknown state is not retried, but may be canceled: the way out of it.
      const unknown = await s.runtime.get(byWhat.get('a state outside the CHECK list')!);
      assert.equal(unknown?.state, 'canceled');
      const view = await get('GET', `/api/notifications/${NOTIFICATION}`);
      assert.equal(view.statusCode, 200, view.body);
      for (const query of ['', '?limit=1000', '?state=failed', '?state=queued', '?name=123']) {
        const list = await get('GET', `/api/tasks${query}`);
        assert.equal(list.statusCode, 200, `${query}: ${list.body}`);
      }
      assert.equal(
        JSON.parse((await get('GET', '/api/tasks?limit=1000')).body).tasks.length,
        ROWS.length,
      );
      for (const health of ['/healthz', '/readyz', '/metrics']) {
        assert.equal((await get('GET', health)).statusCode, 200, health);
      }

      // And new work still runs.
      const answer = (await (
        await fetch(`${url}/api/notifications/notify`, { method: 'POST' })
      ).json()) as { id: string };
      assert.equal((await finished(s.runtime, answer.id)).state, 'succeeded');
      assert.ok(requests > ROWS.length * 4);
    } finally {
      await s.close();
    }
  });
});
