import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { newTask, useStore, type MakeStore } from './harness.js';

export function describeGet(makeStore: MakeStore): void {
  describe('get', () => {
    const { store, enqueueOne } = useStore(makeStore);

    it('returns null for an unknown id', async () => {
      assert.equal(await store.get('123456789'), null);
      assert.equal(await store.get('not-an-id'), null);
    });

    it('knows a task by its id as handed out, not by another spelling of the number', async () => {
      const task = await enqueueOne();
      for (const spelling of [
        `0${task.id}`,
        `${task.id}.0`,
        ` ${task.id}`,
        `${task.id}e0`,
        `+${task.id}`,
      ]) {
        assert.equal(await store.get(spelling), null, spelling);
        assert.equal(await store.cancel(spelling, T0), null, spelling);
      }
      assert.equal((await store.get(task.id))?.id, task.id);
    });
  });
}

export function describeList(makeStore: MakeStore): void {
  describe('list', () => {
    const { store, enqueue, enqueueOne, claim, claimOne } = useStore(makeStore);

    it('lists newest first and filters by state and by name', async () => {
      const a = await enqueueOne({ name: 'email' });
      const b = await enqueueOne({ name: 'sms' });
      const c = await enqueueOne({ name: 'email' });
      const d = await enqueueOne({ name: 'sms', runAt: T0 + 1000 });
      await claim({ names: ['email'], limit: 1 });
      const ids = async (filter: Parameters<Store['list']>[0]) =>
        (await store.list(filter)).tasks.map((t) => t.id);
      assert.deepEqual(await ids({ limit: 10 }), [d.id, c.id, b.id, a.id]);
      assert.deepEqual(await ids({ limit: 10, state: 'queued' }), [d.id, c.id, b.id]);
      assert.deepEqual(await ids({ limit: 10, state: 'running' }), [a.id]);
      assert.deepEqual(await ids({ limit: 10, name: 'sms' }), [d.id, b.id]);
      assert.deepEqual(await ids({ limit: 10, name: 'email', state: 'queued' }), [c.id]);
      assert.deepEqual(await ids({ limit: 10, state: 'failed' }), []);
      assert.deepEqual(await ids({ limit: 10, name: 'nothing' }), []);
    });

    it('pages through every task exactly once, with a null cursor on the last page', async () => {
      for (let i = 0; i < 7; i++) await enqueueOne({ name: i % 2 === 0 ? 'email' : 'sms' });
      const all = (await store.list({ limit: 100 })).tasks.map((t) => t.id);
      assert.equal(all.length, 7);
      for (const limit of [1, 2, 3, 7, 8]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        for (;;) {
          const page = await store.list({ limit, ...(cursor === undefined ? {} : { cursor }) });
          pages += 1;
          assert.ok(page.tasks.length <= limit);
          seen.push(...page.tasks.map((t) => t.id));
          if (page.nextCursor === null) break;
          assert.equal(page.tasks.length, limit);
          cursor = page.nextCursor;
          assert.ok(pages < 20, 'pagination does not end');
        }
        assert.deepEqual(seen, all, `limit ${limit}`);
        assert.equal(pages, Math.max(1, Math.ceil(7 / limit)), `pages for limit ${limit}`);
      }
      const filtered: string[] = [];
      let page = await store.list({ limit: 2, name: 'email' });
      filtered.push(...page.tasks.map((t) => t.id));
      while (page.nextCursor !== null) {
        page = await store.list({ limit: 2, name: 'email', cursor: page.nextCursor });
        filtered.push(...page.tasks.map((t) => t.id));
      }
      assert.deepEqual(
        filtered,
        all.filter((_, i) => i % 2 === 0),
      );
    });

    it('answers an empty page with a null cursor', async () => {
      assert.deepEqual(await store.list({ limit: 5 }), { tasks: [], nextCursor: null });
    });

    it('filters by key prefix, exactly, with state, name and pages', async () => {
      const keys = ['order:4', 'order:42:a', 'order:42:b', 'order:420', 'order:43', 'order:42;'];
      const tasks = await enqueue(
        ...keys.map((key, i) => newTask({ key, name: i === 2 ? 'sms' : 'email' })),
        newTask(),
      );
      const id = (key: string) => tasks[keys.indexOf(key)]!.id;
      const ids = async (filter: Omit<Parameters<Store['list']>[0], 'limit'>, limit = 10) =>
        (await store.list({ limit, ...filter })).tasks.map((t) => t.id);
      assert.deepEqual(await ids({ keyPrefix: 'order:42:' }), [id('order:42:b'), id('order:42:a')]);
      assert.deepEqual(await ids({ keyPrefix: 'order:42' }), [
        id('order:42;'),
        id('order:420'),
        id('order:42:b'),
        id('order:42:a'),
      ]);
      assert.deepEqual(await ids({ keyPrefix: 'order:42:', name: 'sms' }), [id('order:42:b')]);
      await claimOne();
      assert.deepEqual(await ids({ keyPrefix: 'order:', state: 'running' }), [id('order:4')]);
      assert.deepEqual(await ids({ keyPrefix: 'order:42:', state: 'running' }), []);
      assert.deepEqual(await ids({ keyPrefix: 'nothing' }), []);
      const first = await store.list({ limit: 1, keyPrefix: 'order:42:' });
      assert.deepEqual(
        first.tasks.map((t) => t.id),
        [id('order:42:b')],
      );
      assert.deepEqual(await ids({ keyPrefix: 'order:42:', cursor: first.nextCursor! }), [
        id('order:42:a'),
      ]);
    });

    it('matches key prefixes by code point, beyond ASCII', async () => {
      const keys = ['ü:1', 'ü:2', 'üb', 'v', '\u{10FFFF}x', '\u{1F600}', '\uFFFF'];
      const tasks = await enqueue(...keys.map((key) => newTask({ key })));
      const id = (key: string) => tasks[keys.indexOf(key)]!.id;
      const ids = async (keyPrefix: string) =>
        (await store.list({ limit: 10, keyPrefix })).tasks.map((t) => t.id);
      assert.deepEqual(await ids('ü:'), [id('ü:2'), id('ü:1')]);
      assert.deepEqual(await ids('\u{10FFFF}'), [id('\u{10FFFF}x')]);
      assert.deepEqual(await ids('\uFFFF'), [id('\uFFFF')]);
      assert.deepEqual(await ids('\u{1F600}'), [id('\u{1F600}')]);
    });
  });
}
