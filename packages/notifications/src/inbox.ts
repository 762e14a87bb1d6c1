import { EventEmitter } from 'node:events';
import type { FeedEntry, Json, Store } from 'offload';
import type { OutgoingDelivery, Sender } from './delivery.js';

/**
 * The in-app inbox: each notification sent on the `inbox` channel is kept for its recipient, in
 * the store's feed `inbox:<recipient id>`, numbered 1, 2, 3… per recipient. The numbers are the
 * messages' ids, and the event ids of the live stream: a client that resumes after the last id it
 * saw gets every later message once. Every process on the store hears of new messages: this
 * one at once, the others through the store's watch (PostgreSQL's LISTEN/NOTIFY).
 */
export interface InboxMessage {
  /** Its number in the recipient's inbox: 1, 2, 3… */
  id: number;
  notification: string;
  subject: string | null;
  body: string | null;
  title: string | null;
  data: { [key: string]: Json } | null;
  topic: string | null;
  /** When the notification was accepted, ISO 8601. */
  createdAt: string;
  /** When it was stored in the inbox, ISO 8601: later than `createdAt` for one sent with `sendAt`. */
  deliveredAt: string;
  /** When it was marked read, ISO 8601, or null. */
  readAt: string | null;
}

/** A page of an inbox, newest first. */
export interface InboxPage {
  messages: InboxMessage[];
  /** How many messages of the whole inbox are unread. */
  unread: number;
  /** Give it as `before` for the next (older) page; null on the last page. */
  nextCursor: number | null;
}

/** What the stored value of a message holds (the rest is the feed entry's). */
type StoredMessage = Omit<InboxMessage, 'id' | 'deliveredAt' | 'readAt'>;

/** Most messages one read returns. */
export const MAX_INBOX_PAGE = 100;

/** The store's feed of a recipient's inbox. */
export function inboxFeed(recipient: string): string {
  return `inbox:${recipient}`;
}

const FEED_PREFIX = 'inbox:';

/** Hears that the inbox of a recipient (null: of any recipient) may have new messages. */
export type InboxListener = (recipient: string | null) => void;

export class Inbox {
  private readonly local = new EventEmitter();
  private watching: Promise<void> | null = null;

  constructor(private readonly store: () => Promise<Store>) {
    // One listener per open stream: thousands are expected.
    this.local.setMaxListeners(0);
  }

  /** Keeps `delivery` in its recipient's inbox (once, however often it is retried). */
  async append(delivery: OutgoingDelivery): Promise<InboxMessage> {
    const recipient = String(delivery.to);
    const value: StoredMessage = {
      notification: delivery.notification,
      subject: delivery.subject,
      body: delivery.body,
      title: delivery.title ?? null,
      data: delivery.data,
      topic: delivery.topic ?? null,
      createdAt: delivery.createdAt,
    };
    const store = await this.store();
    const { entry } = await store.appendFeedEntry(
      {
        feed: inboxFeed(recipient),
        key: `${delivery.notification}:${delivery.index}`,
        value: JSON.stringify(value),
      },
      Date.now(),
    );
    // A store that watches feeds tells every process, this one included, once the entry is
    // committed: telling this one now as well would make each of its streams read twice.
    if (!store.watchFeeds) this.local.emit('message', recipient);
    return toMessage(entry);
  }

  /** A page of `recipient`'s inbox, newest first, older than `before` when given. */
  async list(recipient: string, { before, limit }: { before?: number; limit: number }) {
    const store = await this.store();
    const feed = inboxFeed(recipient);
    const [entries, unread] = await Promise.all([
      store.listFeedEntries(feed, {
        descending: true,
        limit: limit + 1,
        ...(before === undefined ? {} : { before }),
      }),
      store.countUnreadFeedEntries(feed),
    ]);
    const messages = entries.slice(0, limit).map(toMessage);
    const more = entries.length > limit;
    return { messages, unread, nextCursor: more ? messages.at(-1)!.id : null } as InboxPage;
  }

  /** Up to `limit` messages after the id `after`, oldest first: what a stream sends next. */
  async after(recipient: string, after: number, limit: number): Promise<InboxMessage[]> {
    const store = await this.store();
    return (await store.listFeedEntries(inboxFeed(recipient), { after, limit })).map(toMessage);
  }

  /** The id of the newest message, 0 for an empty inbox. */
  async latest(recipient: string): Promise<number> {
    const store = await this.store();
    const [newest] = await store.listFeedEntries(inboxFeed(recipient), {
      descending: true,
      limit: 1,
    });
    return newest?.seq ?? 0;
  }

  /**
   * Marks message `id` read (`through` given: every message up to it; neither: all); returns how
   * many were unread, and how many stay unread.
   */
  async markRead(
    recipient: string,
    range: { id: number } | { through: number | null },
  ): Promise<{ marked: number; unread: number }> {
    const store = await this.store();
    const feed = inboxFeed(recipient);
    const [from, through] =
      'id' in range ? [range.id, range.id] : [1, range.through ?? Number.POSITIVE_INFINITY];
    const marked = await store.markFeedEntriesRead(feed, { from, through }, Date.now());
    return { marked, unread: await store.countUnreadFeedEntries(feed) };
  }

  async unread(recipient: string): Promise<number> {
    return (await this.store()).countUnreadFeedEntries(inboxFeed(recipient));
  }

  /**
   * Calls `listener` when a recipient's inbox may have new messages: appended by this process, or
   * by another on a store that watches feeds. Returns what stops it.
   */
  async subscribe(listener: InboxListener): Promise<() => void> {
    this.local.on('message', listener);
    try {
      await (this.watching ??= this.watch());
    } catch (error) {
      this.watching = null;
      this.local.off('message', listener);
      throw error;
    }
    return () => this.local.off('message', listener);
  }

  /** Forwards the store's news of feeds (other processes' appends) to the local listeners. */
  private async watch(): Promise<void> {
    const store = await this.store();
    await store.watchFeeds?.((feed) => {
      if (feed === null) this.local.emit('message', null);
      else if (feed.startsWith(FEED_PREFIX)) {
        this.local.emit('message', feed.slice(FEED_PREFIX.length));
      }
    });
  }
}

/** Delivers a notification to a recipient's in-app inbox (see `Inbox`). */
export class InboxSender implements Sender {
  readonly channel = 'inbox';
  readonly providers = ['inbox'];

  constructor(private readonly inbox: Inbox) {}

  async send(delivery: OutgoingDelivery): Promise<string> {
    const message = await this.inbox.append(delivery);
    return `stored as message ${message.id}`;
  }
}

function toMessage(entry: FeedEntry): InboxMessage {
  const stored = JSON.parse(entry.value) as StoredMessage;
  return {
    id: entry.seq,
    notification: stored.notification,
    subject: stored.subject,
    body: stored.body,
    title: stored.title,
    data: stored.data,
    topic: stored.topic,
    createdAt: stored.createdAt,
    deliveredAt: new Date(entry.createdAt).toISOString(),
    readAt: entry.readAt === null ? null : new Date(entry.readAt).toISOString(),
  };
}
