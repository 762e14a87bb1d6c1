import {
  defineTask,
  type Backoff,
  type GroupOptions,
  type Logger,
  type TaskContext,
  type TaskDefinition,
} from 'offload';
import { outcomeOf, RecipientGoneError, type CallOutcome } from './delivery-errors.js';
import type { NotificationContent, SharedContent, StoredContent } from './content.js';
import type { Suppressions } from './suppressions.js';

export const CHANNELS = ['webhook', 'email', 'push', 'log', 'inbox'] as const;
export type ChannelName = (typeof CHANNELS)[number];

/** A browser's `PushSubscription.toJSON()`, less its expiration time. */
export interface PushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** A URL (webhook), an email address, a push subscription, any label (log), a recipient id (inbox). */
export type Recipient = string | PushSubscription;

/**
 * One delivery of a notification to one recipient: the payload of a delivery task. It carries the
 * content itself (`InlineDelivery`), or names the notification whose content task holds it
 * (`SharedDelivery`, see content.ts).
 */
export type Delivery = InlineDelivery | SharedDelivery;

/** A delivery that carries its content: a lone delivery, and any payload without `shared`. */
export interface InlineDelivery extends NotificationContent {
  /**
   * The notification this delivery belongs to; null for a lone delivery (one recipient, no
   * Idempotency-Key), whose notification is its own task.
   */
  notification: string | null;
  /** Its place among the notification's recipients, from 0. */
  index: number;
  /** A digest of the request, to tell a repeated request from a different one (with a key). */
  request: string | null;
  /** When the notification was accepted, ISO 8601. */
  createdAt: string;
  to: Recipient;
  /** The stored recipient it goes to, and the notification's topic (see recipient-book.ts). */
  recipient?: string;
  topic?: string;
}

/** A delivery of a notification to several recipients: the content is stored once, apart. */
export interface SharedDelivery {
  notification: string;
  index: number;
  to: Recipient;
  /** The content (and when it was accepted) is read from the notification's content task. */
  shared: true;
  recipient?: string;
  topic?: string;
}

/** A delivery as a channel sends it: a lone delivery's notification is its task's id. */
export interface OutgoingDelivery extends NotificationContent {
  notification: string;
  index: number;
  /** When the notification was accepted, ISO 8601. */
  createdAt: string;
  to: Recipient;
  /** The stored recipient and the topic, when it was sent to a recipient by id. */
  recipient?: string | undefined;
  topic?: string | undefined;
}

/** What a delivery task returns, stored as its result: who delivered and what they answered. */
export interface DeliveryResult {
  provider: string;
  response: string;
}

export interface SendContext {
  /** Which of the sender's providers to use (an index into `providers`). */
  provider: number;
  signal: AbortSignal;
  logger: Logger;
  /** The W3C traceparent to send with the call, or null: see the task's `ctx.traceparent`. */
  readonly traceparent: string | null;
}

/** Delivers on one channel. The task around it handles failover, gone recipients and metrics. */
export interface Sender {
  readonly channel: ChannelName;
  /** The providers, tried in this order: names to show, never secrets. At least one. */
  readonly providers: readonly string[];
  /** Resolves with the provider's answer; throws to fail the attempt (see delivery-errors). */
  send(delivery: OutgoingDelivery, context: SendContext): Promise<string>;
  /** The address kept on the suppression list when the recipient is gone for good, or null. */
  suppressionAddress?(delivery: OutgoingDelivery): string | null;
  /**
   * The group key of the provider that delivers to `to` (a recipient as stored, which may be
   * anything when written by hand; null when it cannot tell): the provider's concurrency limit
   * and 429 throttle apply to it, across every process.
   */
  providerKey?(to: Recipient): string | null;
}

/** One outgoing call, as metrics count it. */
export interface DeliveryCall {
  channel: ChannelName;
  provider: string;
  outcome: CallOutcome;
  /** In ms. */
  duration: number;
}

export interface DeliveryTaskOptions {
  /** Attempts on each provider before the next one is tried. */
  attemptsPerProvider: number;
  /**
   * Deliveries sent at once to one provider (see `Sender.providerKey`), across every process;
   * undefined: no limit, the provider's 429 throttles it all the same.
   */
  providerConcurrency?: number;
  backoff?: Backoff;
  /** The stored suppression list: checked before each call, added to when a recipient is gone. */
  suppressions: Suppressions;
  /** Where the content of a `SharedDelivery` is read. */
  content: SharedContent;
  /** Told of every outgoing call. */
  onCall?: (call: DeliveryCall) => void;
}

export function deliveryTaskName(channel: ChannelName): string {
  return `notifications.${channel}`;
}

/** The task key of a notification's delivery number `index`. */
export function deliveryKey(id: string, index: number): string {
  return `${deliveryKeyPrefix(id)}${index}`;
}

/** What the keys of every delivery of notification `id` start with. */
export function deliveryKeyPrefix(id: string): string {
  return `notification:${id}:`;
}

/**
 * Which provider attempt `attempt` (from 1) uses: `attemptsPerProvider` attempts on the first,
 * then as many on the next, and so on; the last one takes any attempt beyond (a manual retry).
 */
export function providerFor(attempt: number, attemptsPerProvider: number, count: number): number {
  return Math.min(count - 1, Math.floor((Math.max(1, attempt) - 1) / attemptsPerProvider));
}

/** The task that delivers on `sender`'s channel, with failover from one provider to the next. */
export function deliveryTask(
  sender: Sender,
  options: DeliveryTaskOptions,
): TaskDefinition<Delivery> {
  const { attemptsPerProvider, suppressions, content, onCall } = options;
  const count = sender.providers.length;
  return defineTask<Delivery>({
    name: deliveryTaskName(sender.channel),
    maxAttempts: attemptsPerProvider * count,
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(sender.providerKey ? { group: providerGroup(sender, options.providerConcurrency) } : {}),
    async run(stored, ctx): Promise<DeliveryResult> {
      const delivery = isShared(stored)
        ? withContent(stored, await content.read(stored.notification))
        : outgoing(stored, ctx.taskId);
      const index = providerFor(ctx.attempt, attemptsPerProvider, count);
      const provider = sender.providers[index]!;
      const address = sender.suppressionAddress?.(delivery) ?? null;
      const suppressed =
        address === null ? null : await suppressions.reason(sender.channel, address);
      if (suppressed !== null)
        throw new RecipientGoneError(`not sent: the address is ${suppressed}`);
      const started = performance.now();
      const observe = (outcome: CallOutcome) =>
        onCall?.({
          channel: sender.channel,
          provider,
          outcome,
          duration: performance.now() - started,
        });
      try {
        const response = await sender.send(delivery, new AttemptSendContext(index, ctx));
        observe('delivered');
        ctx.logger.debug({ channel: sender.channel, provider, response }, 'notification delivered');
        return { provider, response };
      } catch (error) {
        observe(outcomeOf(error, ctx.signal));
        if (error instanceof RecipientGoneError && address !== null) {
          await suppressions
            .add(sender.channel, address, error.message, new Date())
            .catch((stored: unknown) =>
              ctx.logger.error(
                { err: stored, channel: sender.channel },
                'the recipient is gone, but it could not be added to the suppression list',
              ),
            );
        }
        throw error;
      }
    },
  });
}

/** The group of a delivery: its provider's key, with the limit of the provider's channel. */
function providerGroup(
  sender: Sender,
  concurrency: number | undefined,
): (delivery: Delivery) => GroupOptions | null {
  return (delivery) => {
    const key = sender.providerKey!((delivery as Partial<Delivery> | null)?.to as Recipient);
    if (key === null) return null;
    return concurrency === undefined ? { key } : { key, concurrency };
  };
}

/**
 * `channel:host` for a URL's host (with its port when given), or null when `url` is not one: each
 * host is one provider. At most 500 characters, as a group key.
 */
export function hostKey(channel: ChannelName, url: string | null): string | null {
  if (url === null || !URL.canParse(url)) return null;
  const { host } = new URL(url);
  return host === '' ? null : `${channel}:${host}`.slice(0, 500);
}

/**
 * The delivery as its sender gets it: a lone delivery is its own notification, named by its task
 * id. Copied field by field: a spread copy with the field added outlived the minor GCs while the
 * send was awaited, and was promoted with all it refers to (measured with `--trace-gc-nvp` on a
 * drain of log deliveries: 0.5 MB survived each minor GC, against 0.07 MB without the spread).
 */
function outgoing(stored: InlineDelivery, taskId: string): OutgoingDelivery {
  return {
    notification: stored.notification ?? taskId,
    index: stored.index,
    createdAt: stored.createdAt,
    to: stored.to,
    subject: stored.subject,
    body: stored.body,
    html: stored.html,
    data: stored.data,
    title: stored.title ?? null,
    recipient: stored.recipient,
    topic: stored.topic,
  };
}

/**
 * Whether `stored` names its content rather than carries it. A property read, not `in`: a payload
 * written by hand may be any JSON, a string or null included.
 */
function isShared(stored: Delivery): stored is SharedDelivery {
  return (stored as Partial<SharedDelivery> | null)?.shared === true;
}

function withContent(stored: SharedDelivery, content: StoredContent): OutgoingDelivery {
  return {
    notification: stored.notification,
    index: stored.index,
    createdAt: content.createdAt,
    to: stored.to,
    subject: content.subject,
    body: content.body,
    html: content.html,
    data: content.data,
    title: content.title ?? null,
    recipient: stored.recipient,
    topic: stored.topic,
  };
}

/**
 * A class rather than an object literal with getters: in V8 each such literal gets a hidden class
 * of its own, allocated in the old generation, and that kept the attempt its getters refer to
 * alive through minor GCs (2.3 MB survived each on the drain above). The signal is made when
 * read, so a sender that never looks (log) costs no AbortController.
 */
class AttemptSendContext implements SendContext {
  constructor(
    readonly provider: number,
    private readonly ctx: TaskContext,
  ) {}

  get signal(): AbortSignal {
    return this.ctx.signal;
  }

  get logger(): Logger {
    return this.ctx.logger;
  }

  get traceparent(): string | null {
    return this.ctx.traceparent;
  }
}
