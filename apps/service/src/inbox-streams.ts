import type { ServerResponse } from 'node:http';
import { SECOND, type Logger } from 'offload';
import type { Inbox, InboxMessage } from '@offload/notifications';

/** The limits and timing of the inbox's live streams (`INBOX_*`, see docs/service.md). */
export interface InboxStreamSettings {
  /** How often a stream with nothing to send gets a `: ping` comment line, in ms. */
  heartbeat: number;
  /** Streams this process holds open at once; more get a 503. */
  maxStreams: number;
  /** Streams one recipient holds open at once on this process; more get a 429. */
  maxStreamsPerRecipient: number;
}

export const DEFAULT_INBOX_STREAM_SETTINGS: InboxStreamSettings = {
  heartbeat: 15 * SECOND,
  maxStreams: 10_000,
  maxStreamsPerRecipient: 10,
};

/** Messages read from the store at a time for one stream. */
const BATCH = 100;
/**
 * Bytes a stream may have waiting to be sent (a client that does not read): past it the stream is
 * closed, and the client resumes from its last event id when it reconnects.
 */
const MAX_BUFFERED = 1024 * 1024;
/** How long a browser waits before it reconnects a stream that ended, in ms (the `retry:` field). */
const RETRY = 1 * SECOND;

/** Why a stream was not opened. */
export type StreamRefusal = 'recipient' | 'process';

/** What the streams did, for metrics. */
export interface InboxStreamCounts {
  open: number;
  refused: Record<StreamRefusal, number>;
  /** Messages written to streams. */
  sent: number;
  /** Streams closed because their client did not read what was sent. */
  dropped: number;
}

/**
 * The open live streams of the inbox (server-sent events) on this process. Each stream sends the
 * messages of its recipient numbered after the last one it sent, read from the store whenever the
 * inbox says that recipient may have new ones (and once when it opens), so that a wake-up lost or
 * repeated never loses or repeats a message. One timer sends the heartbeats of every stream.
 */
export class InboxStreams {
  private readonly byRecipient = new Map<string, Set<InboxStream>>();
  /** Places taken per recipient: its open streams and those about to open. */
  private readonly perRecipient = new Map<string, number>();
  private readonly counts: InboxStreamCounts = {
    open: 0,
    refused: { recipient: 0, process: 0 },
    sent: 0,
    dropped: 0,
  };
  private subscribed: Promise<() => void> | null = null;
  private heartbeat: NodeJS.Timeout | undefined;
  private closed = false;
  readonly settings: InboxStreamSettings;

  constructor(
    private readonly inbox: Inbox,
    private readonly logger: Logger,
    settings: Partial<InboxStreamSettings> = {},
  ) {
    this.settings = { ...DEFAULT_INBOX_STREAM_SETTINGS, ...settings };
  }

  get stats(): InboxStreamCounts {
    return { ...this.counts, refused: { ...this.counts.refused } };
  }

  /**
   * Takes a place for a stream of `recipient`, or says why there is none (and counts the
   * refusal). A place taken is given back by `release`, or by the stream `open` makes ending.
   */
  reserve(recipient: string): StreamRefusal | null {
    let refusal: StreamRefusal | null = null;
    const held = this.perRecipient.get(recipient) ?? 0;
    if (this.counts.open >= this.settings.maxStreams) refusal = 'process';
    else if (held >= this.settings.maxStreamsPerRecipient) refusal = 'recipient';
    if (refusal !== null) {
      this.counts.refused[refusal] += 1;
      return refusal;
    }
    this.perRecipient.set(recipient, held + 1);
    this.counts.open += 1;
    return null;
  }

  /** Gives back a place that `reserve` took and no stream used. */
  release(recipient: string): void {
    const held = (this.perRecipient.get(recipient) ?? 0) - 1;
    if (held > 0) this.perRecipient.set(recipient, held);
    else this.perRecipient.delete(recipient);
    this.counts.open -= 1;
    if (this.counts.open === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  /** Starts listening for new messages; call (and await) before `open`. */
  ready(): Promise<unknown> {
    return (this.subscribed ??= this.inbox
      .subscribe((recipient) => this.wake(recipient))
      .catch((error: unknown) => {
        this.subscribed = null;
        throw error;
      }));
  }

  /**
   * Streams `recipient`'s messages after the id `after` to `response`, whose headers are not sent
   * yet, until the client goes away or the streams close; in the place `reserve` took.
   */
  open(recipient: string, after: number, response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx and others would hold the events back to fill a buffer.
      'x-accel-buffering': 'no',
    });
    response.write(`retry: ${RETRY}\n\n`);
    const stream = new InboxStream(this, recipient, after, response);
    let streams = this.byRecipient.get(recipient);
    if (!streams) this.byRecipient.set(recipient, (streams = new Set()));
    streams.add(stream);
    this.startHeartbeat();
    // A client gone before the stream opened has closed already: no 'close' is left to hear.
    if (response.destroyed) return this.remove(stream);
    response.once('close', () => this.remove(stream));
    stream.pump();
  }

  /** Ends every stream (their clients reconnect, to another process or after a restart). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const streams of this.byRecipient.values()) {
      for (const stream of streams) stream.response.end();
    }
    const unsubscribe = await this.subscribed?.catch(() => null);
    unsubscribe?.();
  }

  /** @internal */
  read(recipient: string, after: number): Promise<InboxMessage[]> {
    return this.inbox.after(recipient, after, BATCH);
  }

  /** @internal */
  sent(count: number): void {
    this.counts.sent += count;
  }

  /** @internal A stream's client does not keep up: close it. */
  drop(stream: InboxStream): void {
    this.counts.dropped += 1;
    stream.response.destroy();
  }

  /** @internal */
  failed(stream: InboxStream, error: unknown): void {
    this.logger.warn(
      { err: error, recipient: stream.recipient },
      'an inbox stream could not read new messages from the store; it is closed, and its client resumes from its last event id',
    );
    stream.response.end();
  }

  private wake(recipient: string | null): void {
    if (recipient === null) {
      for (const streams of this.byRecipient.values()) for (const s of streams) s.pump();
      return;
    }
    const streams = this.byRecipient.get(recipient);
    if (streams) for (const stream of streams) stream.pump();
  }

  private remove(stream: InboxStream): void {
    const streams = this.byRecipient.get(stream.recipient);
    if (!streams?.delete(stream)) return;
    if (streams.size === 0) this.byRecipient.delete(stream.recipient);
    this.release(stream.recipient);
  }

  private startHeartbeat(): void {
    if (this.heartbeat !== undefined || this.closed) return;
    this.heartbeat = setInterval(() => {
      for (const streams of this.byRecipient.values()) {
        for (const stream of streams) stream.write(': ping\n\n');
      }
    }, this.settings.heartbeat);
    this.heartbeat.unref();
  }
}

/** One open stream: sends what follows `last`, one read at a time. */
class InboxStream {
  private reading = false;
  private again = false;

  constructor(
    private readonly streams: InboxStreams,
    readonly recipient: string,
    private last: number,
    readonly response: ServerResponse,
  ) {}

  /** Sends the messages after the last one sent; called again while reading, reads once more. */
  pump(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.drain()
      .catch((error: unknown) => this.streams.failed(this, error))
      .finally(() => (this.reading = false));
  }

  write(text: string): void {
    if (this.response.writableEnded || this.response.destroyed) return;
    this.response.write(text);
    if (this.response.writableLength > MAX_BUFFERED) this.streams.drop(this);
  }

  private async drain(): Promise<void> {
    do {
      this.again = false;
      let page: InboxMessage[];
      do {
        if (this.response.destroyed || this.response.writableEnded) return;
        page = await this.streams.read(this.recipient, this.last);
        let text = '';
        for (const message of page) {
          text += `id: ${message.id}\ndata: ${JSON.stringify(message)}\n\n`;
          this.last = message.id;
        }
        if (text !== '') {
          this.write(text);
          this.streams.sent(page.length);
        }
      } while (page.length === BATCH);
    } while (this.again);
  }
}
