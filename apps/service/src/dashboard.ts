import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Runtime, Task } from 'offload';
import { dashboard, type DeliveryRow, type DeliverySource } from 'offload/dashboard';
import { CONTENT_TASK, DEMO_TASK, type Notifications } from '@offload/notifications';

export interface ServiceDashboardOptions {
  runtime: Runtime;
  notifications: Notifications;
  /** `OFFLOAD_API_KEY`: with one, the dashboard has a login page that asks for it. */
  apiKey: string | undefined;
  /** Show no action (`DASHBOARD_READ_ONLY`). */
  readOnly: boolean;
}

/** The delivery tasks' key: `notification:<id>:<index>`. */
const DELIVERY_KEY = /^notification:(ntf_[A-Za-z0-9_-]{22}):\d+$/;

/**
 * Mounts the dashboard at `/dashboard`, with a notifications page over the delivery tasks of each
 * channel. Its session cookies are signed with a secret derived from the API key, so that every
 * process behind one address accepts them and a restart keeps visitors logged in; without a key,
 * the secret is random per process (the sessions then only carry CSRF tokens).
 */
export async function mountDashboard(
  app: FastifyInstance,
  { runtime, notifications, apiKey, readOnly }: ServiceDashboardOptions,
): Promise<void> {
  await app.register(dashboard, {
    runtime,
    login: apiKey === undefined ? false : { apiKey },
    readOnly,
    ...(apiKey === undefined
      ? {}
      : { secret: createHash('sha256').update(`offload dashboard\0${apiKey}`).digest() }),
    notifications: deliverySource(runtime, notifications),
    logger: app.log,
  });
}

/** Each channel's deliveries, newest first, from its delivery tasks. */
export function deliverySource(runtime: Runtime, notifications: Notifications): DeliverySource {
  const names = notifications.tasks
    .map((task) => task.name)
    .filter((name) => name.startsWith('notifications.') && name !== CONTENT_TASK);
  const channels = names.map(channelOf);
  return {
    channels,
    async list({ channel, cursor }) {
      const name = names[channels.indexOf(channel)]!;
      const page = await runtime.list({ name, limit: 50, ...(cursor ? { cursor } : {}) });
      return { deliveries: page.tasks.map(deliveryRow), nextCursor: page.nextCursor };
    },
  };
}

function channelOf(name: string): string {
  return name === DEMO_TASK ? 'demo' : name.replace(/^notifications\./, '');
}

function deliveryRow(task: Task): DeliveryRow {
  const payload = task.payload as { to?: unknown } | null;
  const result = task.result as { provider?: unknown; response?: unknown } | null;
  const to = payload?.to;
  const endpoint = (to as { endpoint?: unknown } | null | undefined)?.endpoint;
  return {
    taskId: task.id,
    notification: DELIVERY_KEY.exec(task.key ?? '')?.[1] ?? null,
    channel: channelOf(task.name),
    to: typeof to === 'string' ? to : typeof endpoint === 'string' ? endpoint : null,
    state: task.state,
    attempts: task.attempts,
    provider: typeof result?.provider === 'string' ? result.provider : null,
    response: typeof result?.response === 'string' ? result.response : null,
    lastError: task.errors.at(-1)?.message ?? null,
    createdAt: task.createdAt,
  };
}
