import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { Task, TaskRequest } from 'offload';
import {
  CONTENT_KEY,
  CONTENT_TASK,
  DEMO_TASK,
  DIGEST_TASK,
  deliveryKeyPrefix,
  NOTIFICATION_ID,
  notificationId,
  parseNotifyRequest,
  plannedDeferrals,
  requestDigest,
  type Deferral,
  type InlineDelivery,
  type Notifications,
  type PreparedNotification,
  type RecipientReport,
  type StoredContent,
} from '@offload/notifications';
import {
  DIGESTS_ANSWER,
  digestViews,
  joinDigests,
  windowView,
  type DigestAnswer,
} from '../digest-notify.js';
import { ApiError } from '../errors.js';
import { notificationView, type NotificationView } from '../notification-view.js';

export interface NotifyAnswer {
  ok: true;
  message: 'Notification scheduled in background' | 'Nothing scheduled: every delivery was skipped';
  /**
   * For one recipient, the task that delivers it (`GET /api/tasks/:id`); for several, the
   * notification (`GET /api/notifications/:id`, which also takes the task id of a single one).
   */
  id: string;
  /** For a notification to recipients by id: per recipient, what was scheduled and skipped. */
  recipients?: RecipientAnswer[];
  /** With `digest`: the digest each delivery joined, sent when its window closes. */
  digests?: DigestAnswer[];
}

export interface RecipientAnswer {
  id: string;
  /**
   * The delivery tasks made for it (`GET /api/tasks/:id`); one its quiet hours or send window
   * defer says until when (ISO 8601) and which rule (`quietHours` or `sendWindow`). With a
   * digest, the task is the digest's window, `deferredBy` is `digest`, until it closes.
   */
  scheduled: {
    channel: string;
    task: string;
    deferredUntil?: string;
    deferredBy?: Deferral['by'] | 'digest';
  }[];
  skipped: { channel: string | null; reason: string }[];
}

/** The answer's schema: Fastify compiles a serializer for it, faster than JSON.stringify. */
const NOTIFY_ANSWER = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    message: { type: 'string' },
    id: { type: 'string' },
    recipients: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          scheduled: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                channel: { type: 'string' },
                task: { type: 'string' },
                deferredUntil: { type: 'string' },
                deferredBy: { type: 'string' },
              },
              required: ['channel', 'task'],
            },
          },
          skipped: {
            type: 'array',
            items: {
              type: 'object',
              properties: { channel: { type: ['string', 'null'] }, reason: { type: 'string' } },
              required: ['channel', 'reason'],
            },
          },
        },
        required: ['id', 'scheduled', 'skipped'],
      },
    },
    digests: DIGESTS_ANSWER,
  },
  required: ['ok', 'message', 'id'],
} as const;

export interface NotificationRoutesOptions {
  notifications: Notifications;
}

/** What an `Idempotency-Key` may be: printable ASCII, as Stripe and the IETF draft use. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** Task ids the stores hand out (see routes/tasks.ts). */
const TASK_ID = /^[A-Za-z0-9_-]{1,100}$/;
const KEY_OF_DELIVERY = /^notification:(ntf_[A-Za-z0-9_-]{22}):\d+$/;

/**
 * `POST /notifications/notify` (FastAPI's example endpoint) and `POST /notifications`: one delivery task
 * per recipient, answered once they are stored. `GET /notifications/:id`: every delivery of a
 * notification.
 */
export const notificationRoutes: FastifyPluginCallback<NotificationRoutesOptions> = (
  app,
  { notifications },
  done,
) => {
  const runtime = app.offload;

  const notify = async (request: FastifyRequest): Promise<NotifyAnswer> => {
    const now = new Date(notifications.clock.now());
    const parsed = parseNotifyRequest(request.body, notifications.rules, now);
    const key = idempotencyKey(request);
    const prepared = await notifications.prepare(parsed);
    if (parsed.digest !== undefined) return digestAnswer(prepared, notificationId(key), now);
    const lone = key === undefined && (prepared.demo || prepared.deliveries.length === 1);
    const id = lone ? null : notificationId(key);
    const tasks = notifications.plan(prepared, id, now);
    if (tasks.length === 0) {
      return {
        ok: true,
        message: 'Nothing scheduled: every delivery was skipped',
        id: id!,
        ...(prepared.report ? { recipients: answerOf(prepared.report, []) } : {}),
      };
    }
    // Stored now rather than just before the response, to answer with an id. With a key, the
    // notification's first tasks (its content task and first delivery, or its one delivery) are
    // stored first, in one transaction: their keys are the notification's, so the store says
    // whether this request was seen before, and with what body, before anything else is added.
    const first = key === undefined ? tasks : tasks.slice(0, 2);
    const stored = await store(request, first);
    if (key !== undefined) {
      const digest = requestDigest(parsed);
      const seen = stored.map(digestOf).filter((d) => d !== null);
      if (seen.length === 0 || seen.some((d) => d !== digest)) {
        throw new ApiError(
          'IDEMPOTENCY_KEY_REUSED',
          'this Idempotency-Key was used before with a different request; send a new key for a new notification',
        );
      }
      // The others join them; those stored by the first request are returned as they are.
      stored.push(...(await store(request, tasks.slice(first.length))));
    }
    const answer: NotifyAnswer = {
      ok: true,
      message: 'Notification scheduled in background',
      id: id === null || tasks.length === 1 ? stored[0]!.id : id,
    };
    if (prepared.report) {
      // The delivery tasks follow the content task, when there is one.
      const deliveries = tasks.length === 1 ? stored : stored.slice(1);
      answer.recipients = answerOf(prepared.report, deliveries, plannedDeferrals(prepared, now));
    }
    return answer;
  };
  const digestAnswer = async (
    prepared: PreparedNotification,
    id: string,
    now: Date,
  ): Promise<NotifyAnswer> => {
    const digests = await joinDigests(notifications, prepared, id, now);
    const recipients = prepared.report
      ? prepared.report.map(({ id: recipient, scheduled, skipped }) => ({
          id: recipient,
          scheduled: scheduled.map(({ channel, index }) => ({
            channel,
            task: digests[index]!.task,
            deferredUntil: digests[index]!.closesAt,
            deferredBy: 'digest' as const,
          })),
          skipped,
        }))
      : null;
    return {
      ok: true,
      message:
        digests.length === 0
          ? 'Nothing scheduled: every delivery was skipped'
          : 'Notification scheduled in background',
      id,
      ...(recipients === null ? {} : { recipients }),
      digests,
    };
  };
  const options = { schema: { response: { 200: NOTIFY_ANSWER } } };
  app.post('/notifications/notify', options, notify);
  app.post('/notifications', options, notify);

  app.get('/notifications/:id', async (request): Promise<NotificationView> => {
    const { id } = request.params as { id: string };
    if (NOTIFICATION_ID.test(id)) {
      // A notification that joined digests has no deliveries of its own.
      const joined = await digestViews(notifications, runtime, id);
      if (joined !== null) {
        const channels = new Set(joined.digests.map((d) => d.channel));
        return {
          id,
          channel: channels.size === 1 ? [...channels][0]! : 'several',
          createdAt: joined.createdAt,
          deliveries: [],
          digests: joined.digests,
        };
      }
    }
    const found = await findNotification(id);
    if ('window' in found) return windowView(runtime, found.window);
    return notificationView(found.notification, found.tasks);
  });
  done();

  /**
   * A notification and its deliveries, by its id, or by the task id of one of its deliveries (a
   * lone delivery, stored without a key, is a notification of its own).
   */
  async function findNotification(
    id: string,
  ): Promise<{ notification: string; tasks: Task[] } | { window: Task }> {
    if (NOTIFICATION_ID.test(id)) return { notification: id, tasks: await deliveriesOf(id) };
    if (!TASK_ID.test(id)) {
      throw new ApiError(
        'INVALID_NOTIFICATION_ID',
        `${JSON.stringify(id)} is not a notification id; use the "id" the notify request answered with`,
      );
    }
    const task = await runtime.get(id);
    if (!task || !isNotificationTask(task)) throw notFound(id);
    // A digest's window: the digest, and its delivery once it closed.
    if (task.name === DIGEST_TASK) return { window: task };
    if (task.name === CONTENT_TASK) {
      // A content task is no delivery: it finds the notification whose content it holds.
      const content = CONTENT_KEY.exec(task.key ?? '');
      if (!content) throw notFound(id);
      return { notification: content[1]!, tasks: await deliveriesOf(content[1]!) };
    }
    const match = KEY_OF_DELIVERY.exec(task.key ?? '');
    if (!match) return { notification: id, tasks: [task] };
    return { notification: match[1]!, tasks: await deliveriesOf(match[1]!) };
  }

  async function deliveriesOf(notification: string): Promise<Task[]> {
    const page = await runtime.list({ keyPrefix: deliveryKeyPrefix(notification), limit: 1000 });
    if (page.tasks.length === 0) throw notFound(notification);
    return page.tasks;
  }
};

function answerOf(
  report: readonly RecipientReport[],
  deliveries: readonly Task[],
  deferred: readonly (Deferral | null)[] = [],
): RecipientAnswer[] {
  return report.map(({ id, scheduled, skipped }) => ({
    id,
    scheduled: scheduled.map(({ channel, index }) => {
      const deferral = deferred[index];
      return {
        channel,
        task: deliveries[index]!.id,
        // As stored: a repeated request (same Idempotency-Key) finds the first one's tasks.
        ...(deferral
          ? { deferredUntil: deliveries[index]!.runAt.toISOString(), deferredBy: deferral.by }
          : {}),
      };
    }),
    skipped,
  }));
}

function store(request: FastifyRequest, tasks: readonly TaskRequest[]): Promise<Task[]> {
  for (const { task, payload, options } of tasks) request.background.add(task, payload, options);
  return request.background.commit();
}

function idempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !IDEMPOTENCY_KEY.test(value)) {
    throw new ApiError(
      'INVALID_IDEMPOTENCY_KEY',
      'Idempotency-Key must be given once, 1 to 255 printable ASCII characters without spaces (a UUID is a good key)',
    );
  }
  return value;
}

function isNotificationTask(task: Task): boolean {
  return task.name === DEMO_TASK || task.name.startsWith('notifications.');
}

/**
 * The digest of the request that stored `task`: a content task and an inline delivery carry it, a
 * delivery of a notification to several recipients does not.
 */
function digestOf(task: Task): string | null {
  if (task.name === DEMO_TASK) return requestDigest({ kind: 'demo', sendAt: null });
  return (task.payload as Partial<InlineDelivery | StoredContent> | null)?.request ?? null;
}

function notFound(id: string): ApiError {
  return new ApiError(
    'NOTIFICATION_NOT_FOUND',
    `no notification has id ${JSON.stringify(id)}; it may have been pruned after the retention period`,
  );
}
