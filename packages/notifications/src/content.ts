import {
  defineTask,
  HOUR,
  PermanentError,
  RetryLaterError,
  type Json,
  type Runtime,
  type TaskDefinition,
} from 'offload';
import { deliveryKeyPrefix } from './delivery.js';

/**
 * How a notification to several recipients is stored: its content (subject, body, html, data)
 * once, as the payload of one content task, and one small delivery task per recipient that names
 * the notification. Each delivery reads the content when it runs. (A copy in each delivery would
 * make a request to 100 recipients store its content 100 times.)
 *
 * The content task is stored in the same transaction as the first delivery (as all of them,
 * unless an Idempotency-Key splits the request), so no delivery is stored without it. Task ids are
 * given by the store on insert, so the deliveries find it by its key, `notification-content:<id>`,
 * outside the `notification:<id>:` prefix under which the deliveries are listed.
 *
 * It must be stored as long as any delivery may still run, including a manual retry of one that
 * failed, which the API allows until that delivery is pruned, `retention` after it finished. So
 * the content task is `queued` with a delay that outlasts the deliveries' whole retry schedule
 * (`keepFor`); when it runs, it ends only once none of them is queued or running (otherwise it
 * asks to run again later), so it finishes after every delivery and is pruned after every one.
 * Queued tasks are never pruned. (Only a canceled delivery retried at the very end of retention
 * could run on past it; it then fails, saying that the content is no longer stored.) Text
 * rendered from a template belongs here too: rendered once, stored once.
 *
 * Why a task of its own: the store holds tasks only, so the content is a task's payload; and the
 * first delivery could not hold it for its siblings, since it finishes, and is pruned, on its own
 * schedule while they may still be retried. A task of its own can wait for all of them.
 *
 * A delivery whose payload carries its content (a lone delivery, and payloads stored without
 * `shared`) needs none of this.
 */

export const CONTENT_TASK = 'notifications.content';

/** What every recipient of a notification gets. */
export interface NotificationContent {
  subject: string | null;
  body: string | null;
  /** HTML alternative of `body` (email only). */
  html: string | null;
  data: { [key: string]: Json } | null;
  /** The push title, when a template gives one apart from the subject. */
  title?: string | null;
}

/** The payload of a notification's content task. */
export interface StoredContent extends NotificationContent {
  notification: string;
  /** A digest of the request, to tell a repeated request from a different one. */
  request: string | null;
  /** When the notification was accepted, ISO 8601. */
  createdAt: string;
}

/** The key of the content task of notification `id`. */
export function contentKey(id: string): string {
  return `notification-content:${id}`;
}

export const CONTENT_KEY = /^notification-content:(ntf_[A-Za-z0-9_-]{22})$/;

/** What the content needs of the runtime: reading tasks by key. */
export type TaskReader = Pick<Runtime, 'list'>;

/** Contents read lately, by notification: the deliveries of one notification run together. */
const CACHED = 32;

/**
 * Reads notifications' content for their deliveries, and defines the content task. `attach`
 * gives it the runtime once that is made (the runtime needs the tasks first).
 */
export class SharedContent {
  private reader: TaskReader | null = null;
  private readonly recent = new Map<string, Promise<StoredContent>>();

  attach(reader: TaskReader): void {
    this.reader = reader;
  }

  /** The content of notification `id`. Content is never changed, so reads are shared. */
  read(id: string): Promise<StoredContent> {
    let content = this.recent.get(id);
    if (content === undefined) {
      content = this.load(id);
      this.recent.set(id, content);
      content.catch(() => this.recent.delete(id));
      if (this.recent.size > CACHED) this.recent.delete(this.recent.keys().next().value!);
    }
    return content;
  }

  private async load(id: string): Promise<StoredContent> {
    const { tasks } = await this.runtime().list({ keyPrefix: contentKey(id), limit: 1 });
    const task = tasks[0];
    if (task === undefined || task.name !== CONTENT_TASK) {
      throw new PermanentError(
        `the content of notification ${id} is not stored (no task has the key ${contentKey(id)}); its deliveries cannot be sent`,
      );
    }
    return task.payload as unknown as StoredContent;
  }

  /**
   * The content task. It does nothing but wait: queued with a delay of `keepFor` (see above),
   * then done once no delivery of its notification is queued or running.
   */
  task(): TaskDefinition<StoredContent> {
    return defineTask<StoredContent>({
      name: CONTENT_TASK,
      run: async ({ notification }) => {
        const { tasks } = await this.runtime().list({
          keyPrefix: deliveryKeyPrefix(notification),
          limit: 1000,
        });
        const pending = tasks.filter((t) => t.state === 'queued' || t.state === 'running');
        if (pending.length > 0) {
          throw new RetryLaterError(
            HOUR,
            `deliveries of notification ${notification} have not finished (${pending.length} of ${tasks.length}); their content is kept an hour more`,
          );
        }
      },
    });
  }

  private runtime(): TaskReader {
    if (this.reader === null) {
      throw new Error(
        'the notification tasks cannot read stored content: call notifications.attach(runtime) once the runtime is made',
      );
    }
    return this.reader;
  }
}

/**
 * How long the content task waits before it first runs: longer than the deliveries' whole retry
 * schedule when every attempt takes its full `timeout` (ms) and the backoff doubles from `base`
 * up to an hour, plus an hour for deliveries that start late.
 */
export function keepFor(attempts: number, base: number, timeout: number): number {
  let span = attempts * timeout + HOUR;
  for (let attempt = 1; attempt < attempts; attempt += 1) {
    span += Math.min(HOUR, base * 2 ** (attempt - 1));
  }
  return span;
}
