import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  defineTask,
  memoryStore,
  SECOND,
  systemClock,
  type Clock,
  type Store,
  type TaskDefinition,
  type TaskRequest,
} from 'offload';
import { EmailSender } from './channels/email.js';
import { LogSender } from './channels/log.js';
import { Inbox, InboxSender } from './inbox.js';
import { PushSender } from './channels/push.js';
import { WebhookSender } from './channels/webhook.js';
import { CONTENT_TASK, contentKey, keepFor, SharedContent, type StoredContent } from './content.js';
import { Digests, type DigestRuntime } from './digests.js';
import {
  deliveryKey,
  deliveryTask,
  deliveryTaskName,
  type ChannelName,
  type Delivery,
  type DeliveryCall,
  type InlineDelivery,
  type Sender,
  type SharedDelivery,
} from './delivery.js';
import { HostPolicy, type Resolver } from './net/host-policy.js';
import { HttpClient } from './net/http-client.js';
import { NotificationError, type NotifyRequest, type RequestRules } from './notification.js';
import { prepareNotification, type PreparedNotification } from './prepare.js';
import { RecipientBook } from './recipient-book.js';
import { Suppressions } from './suppressions.js';
import { Templates } from './templates.js';
import { UnsubscribeLinks, type UnsubscribeSettings } from './unsubscribe.js';
import { dueAt } from './send-at.js';
import { deferral, type Deferral } from './delivery-hours.js';
import { DEFAULT_CHANNEL_SETTINGS, type ChannelSettings } from './settings.js';

export const DEMO_TASK = 'notifications.demo';
export const LOG_TASK = deliveryTaskName('log');

/**
 * The most one notification stores, in bytes of task payloads: its content once and its part of
 * each delivery (notification id, index, recipient). As large as the largest request body, so a
 * request stores at most about what it sent.
 */
export const MAX_NOTIFICATION_BYTES = 64 * 1024;

export interface NotificationTaskOptions {
  /** How long the demo notification "works", in ms; 2 s, as in FastAPI's example. */
  demoDelay?: number;
  /** The channels' configuration; by default only `log` is on. */
  channels?: ChannelSettings;
  /** How host names of webhook URLs and push endpoints are resolved; default the system's. */
  resolve?: Resolver;
  /** Told of every outgoing call (for metrics). */
  onCall?: (call: DeliveryCall) => void;
  /**
   * Where templates, recipients and the suppression list are kept: the runtime's store, so that
   * every process on it shares them. Default: a memory store of its own (kept by this process).
   */
  store?: Store;
  /** The topics notifications and preferences may name (`NOTIFICATION_TOPICS`); default none. */
  topics?: readonly string[];
  /** One-click unsubscribe links in emails to stored recipients; default none. */
  unsubscribe?: UnsubscribeSettings | null;
  /** What `now` is for requests (delivery hours, digest windows); default the system clock. */
  clock?: Clock;
}

/** The demo notification: logs, does `delay` ms of (abortable) async work (none at 0), logs again. */
export function demoNotificationTask(delay = 2 * SECOND): TaskDefinition<Record<string, never>> {
  return defineTask<Record<string, never>>({
    name: DEMO_TASK,
    async run(_payload, ctx) {
      ctx.logger.info({}, 'Starting background notification task...');
      if (delay > 0) await sleep(delay, undefined, { signal: ctx.signal });
      ctx.logger.info({}, 'Background notification sent successfully!');
    },
  });
}

/**
 * The notification side of the service: the delivery task of each configured channel, the rules
 * a request is checked against, and the tasks that deliver a request.
 */
export class Notifications {
  /** Every task the notification service runs; give them to `createRuntime({ tasks })`. */
  readonly tasks: TaskDefinition<never>[];
  readonly rules: RequestRules;
  readonly templates: Templates;
  readonly recipients: RecipientBook;
  readonly suppressions: Suppressions;
  readonly digests: Digests;
  /** The in-app inbox of each recipient (the `inbox` channel). */
  readonly inbox: Inbox;
  /** Null when the service signs no unsubscribe links. */
  readonly unsubscribeLinks: UnsubscribeLinks | null;
  /** The time requests are read at: give the runtime the same clock. */
  readonly clock: Clock;
  private readonly senders = new Map<ChannelName, Sender>();
  private readonly content = new SharedContent();
  /** How long each channel's content tasks wait before they first run, ms (see content.ts). */
  private readonly keep = new Map<ChannelName, number>();

  constructor(options: NotificationTaskOptions = {}) {
    const settings = options.channels ?? DEFAULT_CHANNEL_SETTINGS;
    this.clock = options.clock ?? systemClock;
    const policy = new HostPolicy(settings.allowPrivateHosts);
    const client = new HttpClient({
      policy,
      ...(options.resolve ? { resolve: options.resolve } : {}),
    });
    const timeout = settings.deliveryTimeout;
    // Opened by the first call that needs it, as the runtime opens it (open is idempotent).
    const store = options.store ?? memoryStore();
    let opening: Promise<void> | null = null;
    const records = async (): Promise<Store> => {
      await (opening ??= store.open().catch((error: unknown) => {
        opening = null;
        throw error;
      }));
      return store;
    };
    this.unsubscribeLinks = options.unsubscribe ? new UnsubscribeLinks(options.unsubscribe) : null;
    const links = this.unsubscribeLinks;
    this.senders.set('log', new LogSender());
    this.inbox = new Inbox(records);
    this.senders.set('inbox', new InboxSender(this.inbox));
    if (settings.webhook) {
      this.senders.set(
        'webhook',
        new WebhookSender({
          client,
          secrets: settings.webhook.secrets,
          timeout,
          throttle: settings.providerThrottle,
        }),
      );
    }
    if (settings.email) {
      this.senders.set(
        'email',
        new EmailSender({
          ...settings.email,
          timeout,
          unsubscribe: links && ((recipient, topic) => links.link(recipient, topic, Date.now())),
        }),
      );
    }
    if (settings.push) {
      this.senders.set(
        'push',
        new PushSender({ client, ...settings.push, timeout, throttle: settings.providerThrottle }),
      );
    }
    this.suppressions = new Suppressions(records);
    const taskOptions = {
      attemptsPerProvider: settings.deliveryAttempts,
      backoff: { base: settings.deliveryBackoff },
      suppressions: this.suppressions,
      content: this.content,
      ...(options.onCall ? { onCall: options.onCall } : {}),
    };
    for (const [channel, sender] of this.senders) {
      const attempts = settings.deliveryAttempts * sender.providers.length;
      this.keep.set(channel, keepFor(attempts, settings.deliveryBackoff, timeout));
    }
    this.templates = new Templates(records);
    this.digests = new Digests(records, this.templates, this.clock);
    this.tasks = [
      demoNotificationTask(options.demoDelay),
      this.content.task(),
      this.digests.task(),
      this.digests.claimTask(),
      ...[...this.senders.values()].map((sender) =>
        deliveryTask(sender, {
          ...taskOptions,
          providerConcurrency: (
            settings.providerConcurrency as Partial<Record<ChannelName, number>>
          )[sender.channel],
        }),
      ),
    ] as TaskDefinition<never>[];
    this.rules = {
      policy,
      unavailable: (channel) => (this.senders.has(channel) ? null : notConfigured(channel)),
      topics: new Set(options.topics ?? []),
    };
    this.recipients = new RecipientBook(records, this.rules);
  }

  /**
   * Reads what `request` depends on, once, when it is accepted: renders its template, looks up
   * its recipients and leaves out suppressed addresses. A NotificationError (a 400) says what
   * cannot be sent.
   */
  prepare(request: NotifyRequest): Promise<PreparedNotification> {
    return prepareNotification(request, this);
  }

  /**
   * Lets the delivery tasks read the content that a notification to several recipients stores
   * once, and digests open and close their windows: call it with the runtime made with `tasks`,
   * before it starts.
   */
  attach(runtime: DigestRuntime): void {
    this.content.attach(runtime);
    this.digests.attach(runtime);
  }

  /**
   * The tasks that deliver what `request` asks for, as notification `id`: one per recipient, each
   * with the key `notification:<id>:<index>`, so that a notification's deliveries can be listed
   * and a repeated request (same `id`) adds nothing. With several recipients, the first task is
   * the notification's content task and the deliveries only name it (see content.ts). With `id`
   * null (one recipient and no Idempotency-Key, the common case) the one task has no key: it is
   * the notification, and a key would only cost its index a write. The deliveries are due at the
   * request's `sendAt` (`now` for a time in the past). Throws a NotificationError when the tasks
   * would store more than MAX_NOTIFICATION_BYTES.
   */
  plan(prepared: PreparedNotification, id: string | null, now: Date): TaskRequest[] {
    const { request, content, deliveries } = prepared;
    if (request.digest !== undefined) {
      throw new NotificationError(
        'INVALID_NOTIFICATION',
        'digest',
        'a digest is joined when POST /api/notifications/notify accepts the notification; leave out digest here',
      );
    }
    const digest = id === null ? null : requestDigest(request);
    const sendAt = request.sendAt === null ? null : dueAt(request.sendAt, now);
    // Each delivery from sendAt, or later, in its recipient's delivery hours.
    const deferred = plannedDeferrals(prepared, now);
    const startAt = (index: number) => deferred[index]?.until ?? sendAt;
    if (prepared.demo) {
      return [{ task: DEMO_TASK, payload: {}, ...deliveryOptions(id, 0, sendAt) }];
    }
    const createdAt = now.toISOString();
    if (deliveries.length === 0) return [];
    if (deliveries.length === 1) {
      const { channel, ...to } = deliveries[0]!;
      const delivery: InlineDelivery = {
        notification: id,
        index: 0,
        request: digest,
        createdAt,
        ...to,
        ...content,
      };
      checkSize([delivery], 1);
      const task = deliveryTaskName(channel);
      return [{ task, payload: delivery, ...deliveryOptions(id, 0, startAt(0)) }];
    }
    if (id === null) throw new Error('a notification to several recipients needs an id');
    const stored: StoredContent = { notification: id, request: digest, createdAt, ...content };
    const shared = deliveries.map(({ channel: _channel, ...to }, index): SharedDelivery => ({
      notification: id,
      index,
      ...to,
      shared: true,
    }));
    checkSize([stored, ...shared], deliveries.length);
    const keep = Math.max(...deliveries.map((d) => this.keep.get(d.channel) ?? 0));
    const last = Math.max(...deliveries.map((_, index) => startAt(index)?.getTime() ?? 0));
    const keepFrom = last === 0 ? null : new Date(last);
    return [
      {
        task: CONTENT_TASK,
        payload: stored,
        // Kept from when the deliveries start.
        options: {
          key: contentKey(id),
          ...(keepFrom === null
            ? { delay: keep }
            : { runAt: new Date(Math.max(keepFrom.getTime(), now.getTime()) + keep) }),
        },
      },
      ...shared.map((delivery, index) => ({
        task: deliveryTaskName(deliveries[index]!.channel),
        payload: delivery,
        ...deliveryOptions(id, delivery.index, startAt(index)),
      })),
    ];
  }
}

/**
 * Per planned delivery, when and why its recipient's delivery hours defer it from its due time
 * (`sendAt`, or `now`); null for one sent when due. A critical notification is never deferred.
 */
export function plannedDeferrals(prepared: PreparedNotification, now: Date): (Deferral | null)[] {
  const { request } = prepared;
  if (request.critical === true) return prepared.deliveries.map(() => null);
  const due = request.sendAt === null ? now : dueAt(request.sendAt, now);
  return prepared.deliveries.map((delivery) =>
    delivery.hours === undefined ? null : deferral(delivery.hours, due),
  );
}

/**
 * The options of delivery `index` of notification `id` (null: a lone delivery, which has no key),
 * due at `sendAt` (null: now). The common case, neither, has none.
 */
function deliveryOptions(
  id: string | null,
  index: number,
  sendAt: Date | null,
): Pick<TaskRequest, 'options'> {
  if (id === null && sendAt === null) return {};
  return {
    options: {
      ...(id === null ? {} : { key: deliveryKey(id, index) }),
      ...(sendAt === null ? {} : { runAt: sendAt }),
    },
  };
}

/** Refuses a notification whose tasks would store more than MAX_NOTIFICATION_BYTES. */
function checkSize(payloads: readonly (Delivery | StoredContent)[], recipients: number): void {
  let bytes = 0;
  for (const payload of payloads) bytes += Buffer.byteLength(JSON.stringify(payload));
  if (bytes <= MAX_NOTIFICATION_BYTES) return;
  const what = recipients === 1 ? 'its one delivery' : `its content and ${recipients} deliveries`;
  throw new NotificationError(
    'INVALID_NOTIFICATION',
    'to',
    `this notification would store ${bytes} bytes (${what}); one notification stores at most ${MAX_NOTIFICATION_BYTES} bytes: shorten subject, body, html or data, or send it to fewer recipients at a time`,
  );
}

/**
 * Every task the notification service runs, with the channels of `options.channels`. To deliver
 * notifications to several recipients, make a `Notifications` and `attach` the runtime instead.
 */
export function notificationTasks(options: NotificationTaskOptions = {}): TaskDefinition<never>[] {
  return new Notifications(options).tasks;
}

export const NOTIFICATION_ID = /^ntf_[A-Za-z0-9_-]{22}$/;

/**
 * A notification's id: random, or derived from the client's `Idempotency-Key` so that a repeated
 * request lands on the same deliveries.
 */
export function notificationId(idempotencyKey?: string): string {
  const bytes =
    idempotencyKey === undefined
      ? randomBytes(16)
      : createHash('sha256').update(`idempotency-key\0${idempotencyKey}`).digest();
  return `ntf_${bytes.subarray(0, 16).toString('base64url')}`;
}

/**
 * A digest of what a request asks for, the same whatever the order of its JSON keys. A demo
 * notification's is the same whenever it is sent: its task stores no digest to compare with.
 */
export function requestDigest(request: NotifyRequest): string {
  // A field the request left out does not count (`template` null is left out): the digest of a
  // request stays the same across versions that add optional fields.
  const content =
    request.kind === 'demo'
      ? 'demo'
      : {
          ...request.notification,
          template: request.notification.template ?? undefined,
          sendAt: request.sendAt?.toISOString(),
          critical: request.critical,
          digest: request.digest,
        };
  return createHash('sha256').update(canonicalJson(content)).digest('base64url');
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

const SETUP: Record<ChannelName, string> = {
  webhook: 'set WEBHOOK_SECRET (whsec_…) to sign webhooks',
  email: 'set SMTP_URL and EMAIL_FROM',
  push: 'set VAPID_PUBLIC_KEY, VAPID_PRIVATE_KEY and VAPID_SUBJECT (`offload vapid` prints a key pair)',
  log: 'nothing',
  inbox: 'nothing',
};

function notConfigured(channel: ChannelName): string {
  return `the ${channel} channel is not configured on this service (its operator must ${SETUP[channel]}); the log channel always works`;
}
