import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store, StoredRecord } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { useStore, type MakeStore } from './harness.js';

const ids = (records: StoredRecord[]) => records.map((r) => r.id);

export function describeRecords(makeStore: MakeStore): void {
  describe('records', () => {
    const { store } = useStore(makeStore);

    it('puts a record, reads it back, and counts revisions on each replacement', async () => {
      const put = await store.putRecord({ collection: 'things', id: 'a', value: '{"n":1}' }, T0);
      assert.deepEqual(put, {
        collection: 'things',
        id: 'a',
        value: '{"n":1}',
        revision: 1,
        createdAt: T0,
        updatedAt: T0,
      });
      const again = await store.putRecord(
        { collection: 'things', id: 'a', value: '{"n":2}' },
        T0 + 5,
      );
      assert.deepEqual(again, { ...put, value: '{"n":2}', revision: 2, updatedAt: T0 + 5 });
      assert.deepEqual(await store.getRecords('things', ['a']), [again]);
    });

    it('keeps collections apart, and reads many ids in their order, leaving out unknown ones', async () => {
      await store.putRecord({ collection: 'one', id: 'x', value: '1' }, T0);
      await store.putRecord({ collection: 'one', id: 'y', value: '2' }, T0);
      await store.putRecord({ collection: 'two', id: 'x', value: '3' }, T0);
      const found = await store.getRecords('one', ['y', 'missing', 'x']);
      assert.deepEqual(
        found.map((r) => [r.id, r.value]),
        [
          ['y', '2'],
          ['x', '1'],
        ],
      );
      assert.deepEqual(await store.getRecords('two', ['y']), []);
      assert.deepEqual(await store.getRecords('three', []), []);
    });

    it('lists by id in code point order, both ways, by prefix and from a cursor', async () => {
      for (const id of ['b/2', 'b/10', 'a', 'b', 'b/1', 'c', 'é', '😀']) {
        await store.putRecord({ collection: 'things', id, value: '0' }, T0);
      }
      await store.putRecord({ collection: 'other', id: 'b/3', value: '0' }, T0);
      assert.deepEqual(ids(await store.listRecords('things', { limit: 100 })), [
        'a',
        'b',
        'b/1',
        'b/10',
        'b/2',
        'c',
        'é',
        '😀',
      ]);
      assert.deepEqual(ids(await store.listRecords('things', { prefix: 'b/', limit: 100 })), [
        'b/1',
        'b/10',
        'b/2',
      ]);
      assert.deepEqual(
        ids(await store.listRecords('things', { prefix: 'b', descending: true, limit: 100 })),
        ['b/2', 'b/10', 'b/1', 'b'],
      );
      const first = await store.listRecords('things', { prefix: 'b/', limit: 2 });
      assert.deepEqual(ids(first), ['b/1', 'b/10']);
      assert.deepEqual(
        ids(await store.listRecords('things', { prefix: 'b/', after: 'b/10', limit: 2 })),
        ['b/2'],
      );
      assert.deepEqual(
        ids(await store.listRecords('things', { descending: true, after: 'b/1', limit: 2 })),
        ['b', 'a'],
      );
      assert.deepEqual(await store.listRecords('nothing', { limit: 10 }), []);
    });

    it('deletes a record, and says whether there was one', async () => {
      await store.putRecord({ collection: 'things', id: 'a', value: '1' }, T0);
      assert.equal(await store.deleteRecord('things', 'a'), true);
      assert.equal(await store.deleteRecord('things', 'a'), false);
      assert.deepEqual(await store.getRecords('things', ['a']), []);
      const put = await store.putRecord({ collection: 'things', id: 'a', value: '2' }, T0 + 1);
      assert.equal(put.revision, 1, 'a record put again after its deletion starts over');
    });

    it('refuses collection names and ids it cannot keep', async () => {
      for (const [collection, id] of [
        ['Things', 'a'],
        ['', 'a'],
        ['things', ''],
        ['things', 'a\0b'],
        ['things', 'x'.repeat(501)],
      ] as const) {
        await assert.rejects(store.putRecord({ collection, id, value: '1' }, T0), {
          code: 'INVALID_OPTION',
        });
      }
    });

    it('reads what another connection to the same database wrote, replaced or deleted', async () => {
      const { store: first, cleanup, connect } = await makeStore();
      const second: Store = connect?.() ?? first;
      try {
        await first.open();
        if (second !== first) await second.open();
        const value = async (id: string) => (await first.getRecords('things', [id]))[0]?.value;
        assert.equal(await value('a'), undefined);
        await second.putRecord({ collection: 'things', id: 'a', value: '1' }, T0);
        assert.equal(await value('a'), '1');
        await second.putRecord({ collection: 'things', id: 'a', value: '2' }, T0);
        assert.equal(await value('a'), '2');
        await first.putRecord({ collection: 'things', id: 'b', value: '3' }, T0);
        assert.equal((await second.getRecords('things', ['b']))[0]?.value, '3');
        await second.deleteRecord('things', 'a');
        assert.deepEqual(await first.getRecords('things', ['a', 'b']).then(ids), ['b']);
      } finally {
        if (second !== first) await second.close();
        await first.close();
        await cleanup();
      }
    });

    it('hands out one revision per write when many writers replace one record at once', async () => {
      const puts = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.putRecord({ collection: 'things', id: 'a', value: String(i) }, T0),
        ),
      );
      assert.deepEqual(
        puts.map((p) => p.revision).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    });
  });
}
