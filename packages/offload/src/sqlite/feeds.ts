import type Database from 'better-sqlite3';
import {
  checkFeedEntry,
  type AppendedFeedEntry,
  type FeedEntry,
  type FeedQuery,
  type FeedRange,
  type NewFeedEntry,
} from '../store/feeds.js';
import { writer, type WriteGuard } from './transactions.js';

/** A row of `offload_feed_entries` as better-sqlite3 returns it. */
interface FeedRow {
  feed: string;
  seq: number;
  key: string;
  value: string;
  created_at: number;
  read_at: number | null;
}

const COLUMNS = 'feed, seq, key, value, created_at, read_at';
/** Above every number a feed gives out: the bound of a query that gives none. */
const NO_BOUND = Number.MAX_SAFE_INTEGER;

/** The feed operations of one connection; each write is one IMMEDIATE transaction. */
export interface FeedTransactions {
  append(entry: NewFeedEntry, now: number): AppendedFeedEntry;
  list(feed: string, query: FeedQuery): FeedEntry[];
  markRead(feed: string, range: FeedRange, now: number): number;
  countUnread(feed: string): number;
}

export function createFeedTransactions(db: Database.Database, guard: WriteGuard): FeedTransactions {
  const write = writer(db, guard);
  const row = <P extends unknown[]>(sql: string) => db.prepare<P, FeedRow>(sql);
  type Bounds = { feed: string; after: number; before: number; limit: number };
  const statements = {
    byKey: row<[string, string]>(
      `SELECT ${COLUMNS} FROM offload_feed_entries WHERE feed = ? AND key = ?`,
    ),
    next: db
      .prepare<[string], number>(
        `INSERT INTO offload_feeds (feed, last_seq) VALUES (?, 1)
         ON CONFLICT (feed) DO UPDATE SET last_seq = last_seq + 1
         RETURNING last_seq`,
      )
      .pluck(),
    insert: row<[FeedRow]>(
      `INSERT INTO offload_feed_entries (${COLUMNS})
       VALUES (@feed, @seq, @key, @value, @created_at, NULL) RETURNING ${COLUMNS}`,
    ),
    ascending: row<[Bounds]>(
      `SELECT ${COLUMNS} FROM offload_feed_entries
       WHERE feed = @feed AND seq > @after AND seq < @before ORDER BY seq LIMIT @limit`,
    ),
    descending: row<[Bounds]>(
      `SELECT ${COLUMNS} FROM offload_feed_entries
       WHERE feed = @feed AND seq > @after AND seq < @before ORDER BY seq DESC LIMIT @limit`,
    ),
    markRead: db.prepare<[number, string, number, number]>(
      `UPDATE offload_feed_entries SET read_at = ?
       WHERE feed = ? AND seq >= ? AND seq <= ? AND read_at IS NULL`,
    ),
    unread: db
      .prepare<[string], number>(
        `SELECT count(*) FROM offload_feed_entries WHERE feed = ? AND read_at IS NULL`,
      )
      .pluck(),
  };
  const append = write((entry: NewFeedEntry, now: number): AppendedFeedEntry => {
    const stored = statements.byKey.get(entry.feed, entry.key);
    if (stored) return { entry: toEntry(stored), created: false };
    const seq = statements.next.get(entry.feed)!;
    const inserted = statements.insert.get({
      feed: entry.feed,
      seq,
      key: entry.key,
      value: entry.value,
      created_at: now,
      read_at: null,
    })!;
    return { entry: toEntry(inserted), created: true };
  });
  const markRead = write(
    (feed: string, { from, through }: FeedRange, now: number) =>
      statements.markRead.run(now, feed, from, Math.min(through, NO_BOUND)).changes,
  );
  return {
    append: (entry, now) => {
      checkFeedEntry(entry);
      return append(entry, now);
    },
    list: (feed, { after, before, descending = false, limit }) =>
      (descending ? statements.descending : statements.ascending)
        .all({ feed, after: after ?? 0, before: before ?? NO_BOUND, limit })
        .map(toEntry),
    markRead,
    countUnread: (feed) => statements.unread.get(feed)!,
  };
}

function toEntry(row: FeedRow): FeedEntry {
  return {
    feed: row.feed,
    seq: row.seq,
    key: row.key,
    value: row.value,
    createdAt: row.created_at,
    readAt: row.read_at,
  };
}
