import type { Json, Runtime, Task } from 'offload';
import { iso } from 'offload';
import {
  requestDigest,
  type DigestResult,
  type DigestWindow,
  type JoinedDigest,
  type Notifications,
  type PreparedNotification,
} from '@offload/notifications';
import { ApiError } from './errors.js';
import { notificationView, type NotificationView } from './notification-view.js';

/** A digest a notify request joined, as the answer shows it. */
export interface DigestAnswer {
  channel: string;
  /** The stored recipient, or null for a notification sent to addresses. */
  recipient: string | null;
  /** The digest's window: `GET /api/tasks/:id`, due when the window closes. */
  task: string;
  /** When the window closes and the digest is sent (later in the recipient's quiet hours). */
  closesAt: string;
}

/** A digest a notification joined, as `GET /api/notifications/:id` shows it. */
export interface DigestView extends DigestAnswer {
  key: string;
  /** The window task's state: `queued` while open, `succeeded` once its delivery is stored. */
  state: Task['state'] | null;
  /** Once closed: how many notifications it gathered, and the delivery that sends them. */
  events: number | null;
  delivery: string | null;
}

/**
 * Joins notification `id` to a digest per delivery `prepared` plans (see digests.ts in the
 * notifications package), and stores which. Nothing is sent now; each window sends one delivery
 * of everything it gathered when it closes.
 */
export async function joinDigests(
  notifications: Notifications,
  prepared: PreparedNotification,
  id: string,
  now: Date,
): Promise<DigestAnswer[]> {
  const { digests } = notifications;
  const request = prepared.request.digest!;
  const asked = requestDigest(prepared.request);
  const seen = await digests.joinsOf(id);
  if (seen !== null) {
    // The same Idempotency-Key again: the digests the first request joined, if it was this one.
    if (seen.request !== asked) {
      throw new ApiError(
        'IDEMPOTENCY_KEY_REUSED',
        'this Idempotency-Key was used before with a different request; send a new key for a new notification',
      );
    }
    return seen.digests.map(answerOf);
  }
  const { content } = prepared;
  if (request.template !== null) {
    // Refused now when it cannot render this notification, rather than when the window closes.
    await digests.render(request.template, request.key, [
      { notification: id, createdAt: now.toISOString(), ...content },
    ]);
  }
  const joined: JoinedDigest[] = [];
  for (const delivery of prepared.deliveries) {
    joined.push(await digests.join(delivery, request, id, content, now));
  }
  if (joined.length > 0) await digests.recordJoins(id, asked, joined, now);
  return joined.map(answerOf);
}

function answerOf({ channel, recipient, task, closesAt }: JoinedDigest): DigestAnswer {
  return { channel, recipient, task, closesAt };
}

/** The digests notification `id` joined, with their windows' state; null when it joined none. */
export async function digestViews(
  notifications: Notifications,
  runtime: Runtime,
  id: string,
): Promise<{ createdAt: string | null; digests: DigestView[] } | null> {
  const joins = await notifications.digests.joinsOf(id);
  if (joins === null) return null;
  const digests = await Promise.all(
    joins.digests.map(async (joined): Promise<DigestView> => {
      const task = await runtime.get(joined.task);
      const result = readResult(task?.result ?? null);
      return {
        ...answerOf(joined),
        key: joined.key,
        state: task?.state ?? null,
        events: result?.events ?? null,
        delivery: result?.delivery ?? null,
      };
    }),
  );
  return { createdAt: iso(joins.createdAt), digests };
}

/**
 * A digest's window by its task id, as `GET /api/notifications/:id` shows it: the window in
 * `digests`, and its delivery, once stored, in `deliveries`.
 */
export async function windowView(runtime: Runtime, task: Task): Promise<NotificationView> {
  const window = task.payload as Partial<DigestWindow> | null;
  const result = readResult(task.result);
  const delivery = result?.delivery ? await runtime.get(result.delivery) : null;
  const channel = typeof window?.channel === 'string' ? window.channel : 'digest';
  return {
    id: task.id,
    channel,
    createdAt: iso(task.createdAt),
    deliveries: delivery ? notificationView(task.id, [delivery]).deliveries : [],
    digests: [
      {
        channel,
        recipient: typeof window?.recipient === 'string' ? window.recipient : null,
        task: task.id,
        closesAt: iso(task.runAt) ?? '',
        key: typeof window?.key === 'string' ? window.key : '',
        state: task.state,
        events: result?.events ?? null,
        delivery: result?.delivery ?? null,
      },
    ],
  };
}

function readResult(value: Json | null): DigestResult | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { events, delivery } = value as Partial<Record<keyof DigestResult, Json>>;
  if (typeof events !== 'number') return null;
  return {
    events,
    notifications: [],
    delivery: typeof delivery === 'string' ? delivery : null,
  };
}

/** The answer's schema of `digests`. */
export const DIGESTS_ANSWER = {
  type: 'array',
  items: {
    type: 'object',
    properties: {
      channel: { type: 'string' },
      recipient: { type: ['string', 'null'] },
      task: { type: 'string' },
      closesAt: { type: 'string' },
    },
    required: ['channel', 'recipient', 'task', 'closesAt'],
  },
} as const;
