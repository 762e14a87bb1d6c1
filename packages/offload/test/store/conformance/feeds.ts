import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FeedEntry } from '../../../src/store/feeds.js';
import type { Store } from '../../../src/store/store.js';
import { T0 } from '../../helpers.js';
import { useStore, type MakeStore } from './harness.js';

const seqs = (entries: FeedEntry[]) => entries.map((e) => e.seq);

export function describeFeeds(makeStore: MakeStore): void {
  describe('feeds', () => {
    const { store } = useStore(makeStore);
    const append = (feed: string, key: string, at = T0) =>
      store.appendFeedEntry({ feed, key, value: JSON.stringify({ key }) }, at);

    it('numbers the entries of each feed 1, 2, 3…, and reads them back', async () => {
      const first = await append('u1', 'a');
      assert.deepEqual(first, {
        entry: { feed: 'u1', seq: 1, key: 'a', value: '{"key":"a"}', createdAt: T0, readAt: null },
        created: true,
      });
      assert.equal((await append('u1', 'b')).entry.seq, 2);
      assert.equal((await append('u2', 'a')).entry.seq, 1);
      assert.deepEqual(await store.listFeedEntries('u1', { limit: 10 }), [
        first.entry,
        { ...first.entry, seq: 2, key: 'b', value: '{"key":"b"}' },
      ]);
      assert.deepEqual(await store.listFeedEntries('nobody', { limit: 10 }), []);
    });

    it('stores an entry once per key: a repeated append returns the stored entry', async () => {
      const first = await append('u1', 'a', T0);
      const again = await store.appendFeedEntry({ feed: 'u1', key: 'a', value: '"other"' }, T0 + 9);
      assert.deepEqual(again, { entry: first.entry, created: false });
      assert.equal((await append('u1', 'b')).entry.seq, 2);
      assert.equal(await store.countUnreadFeedEntries('u1'), 2);
    });

    it('pages ascending after a number and descending before one', async () => {
      for (let i = 1; i <= 7; i++) await append('u1', `k${i}`);
      assert.deepEqual(seqs(await store.listFeedEntries('u1', { after: 3, limit: 2 })), [4, 5]);
      assert.deepEqual(seqs(await store.listFeedEntries('u1', { after: 6, limit: 10 })), [7]);
      assert.deepEqual(seqs(await store.listFeedEntries('u1', { after: 7, limit: 10 })), []);
      const newest = await store.listFeedEntries('u1', { descending: true, limit: 3 });
      assert.deepEqual(seqs(newest), [7, 6, 5]);
      const older = { descending: true, before: 5, limit: 3 };
      assert.deepEqual(seqs(await store.listFeedEntries('u1', older)), [4, 3, 2]);
      assert.deepEqual(seqs(await store.listFeedEntries('u1', { ...older, before: 2 })), [1]);
    });

    it('marks a range read once, and counts the unread', async () => {
      for (let i = 1; i <= 5; i++) await append('u1', `k${i}`);
      await append('u2', 'k1');
      assert.equal(await store.markFeedEntriesRead('u1', { from: 2, through: 2 }, T0 + 1), 1);
      assert.equal(await store.markFeedEntriesRead('u1', { from: 2, through: 2 }, T0 + 2), 0);
      assert.equal(await store.countUnreadFeedEntries('u1'), 4);
      const [two] = await store.listFeedEntries('u1', { after: 1, limit: 1 });
      assert.equal(two!.readAt, T0 + 1);
      const all = { from: 1, through: Number.POSITIVE_INFINITY };
      assert.equal(await store.markFeedEntriesRead('u1', all, T0 + 3), 4);
      assert.equal(await store.countUnreadFeedEntries('u1'), 0);
      assert.equal(await store.countUnreadFeedEntries('u2'), 1);
      assert.equal(await store.markFeedEntriesRead('nobody', all, T0), 0);
      assert.equal((await append('u1', 'k6')).entry.readAt, null);
      assert.equal(await store.countUnreadFeedEntries('u1'), 1);
    });

    it('refuses a feed or key that no store can keep', async () => {
      for (const [feed, key] of [
        ['', 'a'],
        ['u1', ''],
        ['u\0', 'a'],
        ['u1', 'a\0b'],
        ['x'.repeat(201), 'a'],
        ['u1', 'x'.repeat(501)],
      ] as const) {
        await assert.rejects(store.appendFeedEntry({ feed, key, value: '1' }, T0), {
          code: 'INVALID_OPTION',
        });
      }
    });

    it('gives each of many appends at once its own number, none skipped', async () => {
      const appended = await Promise.all(
        Array.from({ length: 30 }, (_, i) => append('u1', `k${i}`)),
      );
      assert.deepEqual(
        appended.map((a) => a.entry.seq).sort((a, b) => a - b),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
    });

    it('lets a reader on another connection follow appends without gaps or repeats', async () => {
      const { store: first, cleanup, connect } = await makeStore();
      const second: Store = connect?.() ?? first;
      const told: (string | null)[] = [];
      let wake: () => void = () => undefined;
      try {
        await first.open();
        if (second !== first) await second.open();
        if (first.watchFeeds) {
          await first.watchFeeds((feed) => {
            told.push(feed);
            wake();
          });
        }
        const writers = Array.from({ length: 4 }, (_, w) =>
          (async () => {
            for (let i = 0; i < 25; i++) {
              await (w % 2 === 0 ? second : first).appendFeedEntry(
                { feed: 'u1', key: `w${w}-${i}`, value: '0' },
                T0,
              );
            }
          })(),
        );
        const seen: number[] = [];
        const reading = (async () => {
          while (seen.length < 100) {
            const page = await first.listFeedEntries('u1', { after: seen.at(-1) ?? 0, limit: 7 });
            seen.push(...seqs(page));
          }
        })();
        await Promise.all([...writers, reading]);
        assert.deepEqual(
          seen,
          Array.from({ length: 100 }, (_, i) => i + 1),
        );
        if (first.watchFeeds) {
          // Told at commit, by LISTEN/NOTIFY: at least once after the last append.
          const last = await second.appendFeedEntry({ feed: 'u9', key: 'x', value: '0' }, T0);
          await new Promise<void>((resolve) => {
            wake = () => told.includes('u9') && resolve();
            wake();
          });
          assert.equal(last.created, true);
          assert.ok(told.includes('u1'));
        }
      } finally {
        if (second !== first) await second.close();
        await first.close();
        await cleanup();
      }
    });
  });
}
