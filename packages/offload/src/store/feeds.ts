import { InvalidOptionError } from '../options-check.js';

/**
 * Feeds: per-name append-only lists of small JSON entries (the notification service keeps each
 * recipient's inbox in one). Each entry gets the next number of its feed, given out inside the
 * write, and entries become visible to readers in that order: a reader that remembers the last
 * number it saw and reads after it misses none and sees none twice. An entry carries a key,
 * unique in its feed, so that a write repeated (a retried task) stores it once.
 */
export interface FeedOperations {
  /**
   * Adds an entry with the next number of its feed; when an entry with the same key is stored
   * already, returns that one (`created` false) and writes nothing. Stores shared by several
   * processes tell their `watchFeeds` listeners at commit.
   */
  appendFeedEntry(entry: NewFeedEntry, now: number): Promise<AppendedFeedEntry>;
  /**
   * A page of the feed's entries: by number ascending after `after` (exclusive) when given, or
   * with `descending`, newest first before `before` (exclusive) when given. `limit` is already
   * validated (1 to 1000).
   */
  listFeedEntries(feed: string, query: FeedQuery): Promise<FeedEntry[]>;
  /**
   * Marks the feed's unread entries numbered `from` to `through` (both included) read at `now`;
   * returns how many were unread.
   */
  markFeedEntriesRead(feed: string, range: FeedRange, now: number): Promise<number>;
  /** How many entries of the feed are unread. */
  countUnreadFeedEntries(feed: string): Promise<number>;
  /**
   * Calls `listener` with the name of a feed that another process (or this one) appended to, or
   * with null when any feed may have been (the store lost its watch for a while). Only stores
   * shared by several processes have it (PostgreSQL, through LISTEN/NOTIFY); a listener reads
   * the feed after the last number it saw rather than trusting the call alone.
   */
  watchFeeds?(listener: (feed: string | null) => void): Promise<void>;
}

export interface NewFeedEntry {
  feed: string;
  /** Unique in the feed: a second append with it returns the first entry. */
  key: string;
  /** JSON text, never interpreted by the store. */
  value: string;
}

export interface FeedEntry extends NewFeedEntry {
  /** 1, 2, 3… per feed, in the order the entries were committed (numbers may be skipped). */
  seq: number;
  createdAt: number;
  /** When it was marked read, or null. */
  readAt: number | null;
}

export interface AppendedFeedEntry {
  entry: FeedEntry;
  /** False when an entry with the same key was stored already and is returned instead. */
  created: boolean;
}

export interface FeedQuery {
  after?: number;
  before?: number;
  descending?: boolean;
  limit: number;
}

export interface FeedRange {
  from: number;
  through: number;
}

/** The longest feed name and entry key, in characters. */
export const MAX_FEED_NAME = 200;
export const MAX_FEED_KEY = 500;

/** Throws unless `feed` and `key` may name an entry: 1 to 200 and 1 to 500 characters, no NUL. */
export function checkFeedEntry({ feed, key, value }: NewFeedEntry): void {
  checkFeedName(feed);
  if (
    typeof key !== 'string' ||
    key.length === 0 ||
    key.length > MAX_FEED_KEY ||
    key.includes('\0')
  ) {
    throw new InvalidOptionError(
      'feed entry key',
      `must be a string of 1 to ${MAX_FEED_KEY} characters without NUL, got ${JSON.stringify(String(key).slice(0, 100))}`,
    );
  }
  if (typeof value !== 'string') {
    throw new InvalidOptionError('feed entry value', 'must be JSON text');
  }
}

export function checkFeedName(feed: string): void {
  if (
    typeof feed !== 'string' ||
    feed.length === 0 ||
    feed.length > MAX_FEED_NAME ||
    feed.includes('\0')
  ) {
    throw new InvalidOptionError(
      'feed',
      `must be a string of 1 to ${MAX_FEED_NAME} characters without NUL, got ${JSON.stringify(String(feed).slice(0, 100))}`,
    );
  }
}

interface MemoryFeed {
  last: number;
  entries: FeedEntry[];
  byKey: Map<string, FeedEntry>;
  unread: number;
}

/** The feeds of a memory store; each call runs to its end without yielding. */
export class MemoryFeeds {
  private readonly feeds = new Map<string, MemoryFeed>();

  append(entry: NewFeedEntry, now: number): AppendedFeedEntry {
    checkFeedEntry(entry);
    let feed = this.feeds.get(entry.feed);
    if (!feed) {
      feed = { last: 0, entries: [], byKey: new Map(), unread: 0 };
      this.feeds.set(entry.feed, feed);
    }
    const stored = feed.byKey.get(entry.key);
    if (stored) return { entry: { ...stored }, created: false };
    feed.last += 1;
    const row: FeedEntry = {
      feed: entry.feed,
      seq: feed.last,
      key: entry.key,
      value: entry.value,
      createdAt: now,
      readAt: null,
    };
    feed.entries.push(row);
    feed.byKey.set(row.key, row);
    feed.unread += 1;
    return { entry: { ...row }, created: true };
  }

  list(name: string, { after, before, descending = false, limit }: FeedQuery): FeedEntry[] {
    const entries = this.feeds.get(name)?.entries ?? [];
    const found: FeedEntry[] = [];
    if (descending) {
      for (let i = entries.length - 1; i >= 0 && found.length < limit; i--) {
        const row = entries[i]!;
        if ((before === undefined || row.seq < before) && (after === undefined || row.seq > after))
          found.push({ ...row });
      }
    } else {
      for (let i = firstAfter(entries, after ?? 0); i < entries.length; i++) {
        const row = entries[i]!;
        if (found.length >= limit || (before !== undefined && row.seq >= before)) break;
        found.push({ ...row });
      }
    }
    return found;
  }

  markRead(name: string, { from, through }: FeedRange, now: number): number {
    const feed = this.feeds.get(name);
    if (!feed) return 0;
    let marked = 0;
    for (let i = firstAfter(feed.entries, from - 1); i < feed.entries.length; i++) {
      const row = feed.entries[i]!;
      if (row.seq > through) break;
      if (row.readAt === null) {
        row.readAt = now;
        marked += 1;
      }
    }
    feed.unread -= marked;
    return marked;
  }

  countUnread(name: string): number {
    return this.feeds.get(name)?.unread ?? 0;
  }
}

/** The index of the first entry numbered above `after` (entries are in number order). */
function firstAfter(entries: readonly FeedEntry[], after: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle]!.seq <= after) low = middle + 1;
    else high = middle;
  }
  return low;
}
