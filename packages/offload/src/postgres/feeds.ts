import type pg from 'pg';
import {
  checkFeedEntry,
  type AppendedFeedEntry,
  type FeedEntry,
  type FeedQuery,
  type FeedRange,
  type NewFeedEntry,
} from '../store/feeds.js';
import { quoteIdentifier } from './migrations.js';

/** A row of `feed_entries` as node-postgres returns it: `bigint` columns arrive as strings. */
interface FeedRow {
  feed: string;
  seq: string;
  key: string;
  value: string;
  created_at: string;
  read_at: string | null;
  created?: boolean;
}

const COLUMNS = 'feed, seq, key, value, created_at, read_at';
/** Above every number a feed gives out: the bound of a query that gives none. */
const NO_BOUND = '9223372036854775807';

/**
 * The LISTEN/NOTIFY channel that appends to the feeds of `schema` are told on, with the feed's
 * name as the payload (PostgreSQL keeps 63 bytes of a channel name).
 */
export function feedChannel(schema: string): string {
  return `offload_feeds_${schema}`.slice(0, 63);
}

/** The feed statements of one schema. */
function feedSql(schema: string) {
  const feeds = `${quoteIdentifier(schema)}.feeds`;
  const entries = `${quoteIdentifier(schema)}.feed_entries`;
  return {
    // $1 feed, $2 key, $3 value, $4 now, $5 channel. One statement, so one transaction: the
    // number is taken under the feed row's lock, held until the entry commits, and the channel is
    // told at commit. An entry with the key already stored is returned instead (`created` false);
    // one committed meanwhile by another append with the same key leaves the result empty.
    append: `WITH existing AS (
        SELECT ${COLUMNS} FROM ${entries} WHERE feed = $1 AND key = $2
      ), numbered AS (
        INSERT INTO ${feeds} AS f (feed, last_seq) SELECT $1, 1 WHERE NOT EXISTS (SELECT FROM existing)
        ON CONFLICT (feed) DO UPDATE SET last_seq = f.last_seq + 1
        RETURNING last_seq
      ), inserted AS (
        INSERT INTO ${entries} (feed, seq, key, value, created_at)
        SELECT $1, last_seq, $2, $3, $4 FROM numbered
        ON CONFLICT (feed, key) DO NOTHING
        RETURNING ${COLUMNS}
      )
      SELECT ${COLUMNS}, true AS created, pg_notify($5, feed)::text AS told FROM inserted
      UNION ALL SELECT ${COLUMNS}, false, NULL FROM existing`,
    // $1 feed, $2 key.
    byKey: `SELECT ${COLUMNS} FROM ${entries} WHERE feed = $1 AND key = $2`,
    // $1 feed, $2 after, $3 before, $4 limit.
    ascending: `SELECT ${COLUMNS} FROM ${entries}
      WHERE feed = $1 AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4`,
    descending: `SELECT ${COLUMNS} FROM ${entries}
      WHERE feed = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4`,
    // $1 feed, $2 from, $3 through, $4 now.
    markRead: `UPDATE ${entries} SET read_at = $4
      WHERE feed = $1 AND seq >= $2 AND seq <= $3 AND read_at IS NULL`,
    // $1 feed.
    unread: `SELECT count(*)::integer AS count FROM ${entries} WHERE feed = $1 AND read_at IS NULL`,
  };
}

/** The feed operations of the PostgreSQL store, on its pool: each one statement. */
export class PostgresFeeds {
  private readonly sql: ReturnType<typeof feedSql>;
  private readonly channel: string;
  private readonly prefix: string;

  constructor(schema: string) {
    this.sql = feedSql(schema);
    this.channel = feedChannel(schema);
    this.prefix = `offload:${schema}:feeds.`;
  }

  async append(pool: pg.Pool, entry: NewFeedEntry, now: number): Promise<AppendedFeedEntry> {
    checkFeedEntry(entry);
    const { feed, key, value } = entry;
    const { rows } = await pool.query<FeedRow>(
      this.prepared('append', [feed, key, value, now, this.channel]),
    );
    const row = rows[0] ?? (await pool.query<FeedRow>(this.sql.byKey, [feed, key])).rows[0];
    if (!row) throw new Error(`the feed entry ${feed}/${key} was neither stored nor found`);
    return { entry: toEntry(row), created: row.created === true };
  }

  async list(
    pool: pg.Pool,
    feed: string,
    { after, before, descending = false, limit }: FeedQuery,
  ): Promise<FeedEntry[]> {
    const name = descending ? 'descending' : 'ascending';
    const bounds = [feed, String(after ?? 0), before === undefined ? NO_BOUND : String(before)];
    const { rows } = await pool.query<FeedRow>(this.prepared(name, [...bounds, limit]));
    return rows.map(toEntry);
  }

  async markRead(pool: pg.Pool, feed: string, { from, through }: FeedRange, now: number) {
    const last = Number.isFinite(through) ? String(through) : NO_BOUND;
    const { rowCount } = await pool.query(this.sql.markRead, [feed, String(from), last, now]);
    return rowCount ?? 0;
  }

  async countUnread(pool: pg.Pool, feed: string): Promise<number> {
    const { rows } = await pool.query<{ count: number }>(this.prepared('unread', [feed]));
    return rows[0]!.count;
  }

  private prepared(
    name: 'append' | 'ascending' | 'descending' | 'unread',
    values: unknown[],
  ): pg.QueryConfig {
    return { name: this.prefix + name, text: this.sql[name], values };
  }
}

function toEntry(row: FeedRow): FeedEntry {
  return {
    feed: row.feed,
    seq: Number(row.seq),
    key: row.key,
    value: row.value,
    createdAt: Number(row.created_at),
    readAt: row.read_at === null ? null : Number(row.read_at),
  };
}
