import type { Json, Task } from 'offload';
import { DEMO_TASK, type Delivery, type DeliveryResult } from '@offload/notifications';
import { iso, taskView } from 'offload';
import type { DigestView } from './digest-notify.js';

/** One delivery of a notification, as `GET /api/notifications/:id` shows it. */
export interface DeliveryView {
  /** The delivery's task: `GET /api/tasks/:id`. */
  id: string;
  /** Its place in the request's `to` (or among the deliveries to stored recipients), from 0. */
  index: number;
  /** `webhook`, `email`, `push`, `log` or `demo`. */
  channel: string;
  /** The recipient: a URL, an address, a push endpoint or a label; null for the demo. */
  to: string | null;
  /** The stored recipient it was sent to, by id; null for a notification sent to addresses. */
  recipient: string | null;
  state: Task['state'];
  attempts: number;
  maxAttempts: number;
  lastError: ReturnType<typeof taskView>['lastError'];
  /** Which provider delivered (e.g. `smtp-2` after a failover), once delivered. */
  provider: string | null;
  /** What the provider answered, once delivered. */
  response: string | null;
  createdAt: string | null;
  /** When it is due: later than `createdAt` when scheduled, or deferred by quiet hours. */
  runAt: string | null;
  finishedAt: string | null;
}

export interface NotificationView {
  id: string;
  /**
   * `webhook`, `email`, `push`, `log`, or `demo` for the demo notification (no body); `several`
   * for a notification to stored recipients delivered on more than one channel.
   */
  channel: string;
  createdAt: string | null;
  deliveries: DeliveryView[];
  /** For a notification that joined digests (and has no deliveries of its own): each digest. */
  digests?: DigestView[];
}

/** A notification and its deliveries, from the delivery tasks whose keys name it. */
export function notificationView(id: string, tasks: readonly Task[]): NotificationView {
  const deliveries = tasks
    .map(deliveryView)
    .sort((a, b) => a.index - b.index || Number(a.id) - Number(b.id));
  const first = tasks.reduce((a, b) => (a.createdAt <= b.createdAt ? a : b));
  const channels = new Set(deliveries.map((d) => d.channel));
  return {
    id,
    channel: channels.size > 1 ? 'several' : channelOf(first),
    createdAt: iso(first.createdAt),
    deliveries,
  };
}

function deliveryView(task: Task): DeliveryView {
  const view = taskView(task);
  const delivery = task.payload as Partial<Delivery> | null;
  const result = isResult(task.result) ? task.result : null;
  return {
    id: task.id,
    index: Number(task.key?.split(':').at(-1) ?? 0),
    channel: channelOf(task),
    to: recipientText(delivery?.to),
    recipient: typeof delivery?.recipient === 'string' ? delivery.recipient : null,
    state: view.state,
    attempts: view.attempts,
    maxAttempts: view.maxAttempts,
    lastError: view.lastError,
    provider: result?.provider ?? null,
    response: result?.response ?? null,
    createdAt: view.createdAt,
    runAt: view.runAt,
    finishedAt: view.finishedAt,
  };
}

function channelOf(task: Task): string {
  return task.name === DEMO_TASK ? 'demo' : task.name.replace(/^notifications\./, '');
}

/** The recipient as text; null for the demo, or for a payload written by hand without one. */
function recipientText(to: unknown): string | null {
  if (typeof to === 'string') return to;
  const endpoint = (to as { endpoint?: unknown } | null | undefined)?.endpoint;
  return typeof endpoint === 'string' ? endpoint : null;
}

function isResult(value: Json | null): value is Json & DeliveryResult {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    typeof value.provider === 'string' &&
    typeof value.response === 'string'
  );
}
