import type { TaskState } from '../types.js';
import { html, type Html } from './html.js';
import { when, type PageContext } from './layout.js';

/** One delivery of a notification, as the notifications page shows it. */
export interface DeliveryRow {
  /** The delivery's task id. */
  taskId: string;
  /** The notification it belongs to, when known. */
  notification: string | null;
  channel: string;
  /** The recipient: a URL, an address, a push endpoint; null when there is none. */
  to: string | null;
  state: TaskState;
  attempts: number;
  /** Which provider delivered, once delivered. */
  provider: string | null;
  /** What the provider answered, once delivered. */
  response: string | null;
  /** The last error's message, if an attempt failed. */
  lastError: string | null;
  createdAt: Date;
}

/**
 * The notifications page's source: an app with notification channels (the service) passes one
 * in. Each channel is read a page at a time, newest first.
 */
export interface DeliverySource {
  /** The channels, in the order the page offers them. */
  channels: readonly string[];
  list(query: { channel: string; cursor?: string }): Promise<{
    deliveries: DeliveryRow[];
    nextCursor: string | null;
  }>;
}

export function notificationsPage(
  ctx: PageContext,
  channels: readonly string[],
  channel: string,
  page: { deliveries: DeliveryRow[]; nextCursor: string | null },
): Html {
  const href = (c: string, cursor?: string) =>
    `${ctx.base}/notifications?channel=${encodeURIComponent(c)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
  return html`<h1>Notifications</h1>
    <nav class="tabs" aria-label="Channels">
      ${channels.map(
        (c) =>
          html`<a href="${href(c)}" ${c === channel ? html` aria-current="page"` : ''}>${c}</a>`,
      )}
    </nav>
    ${
      page.deliveries.length === 0
        ? html`<p>No deliveries on this channel.</p>`
        : html`<div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Task</th>
                  <th scope="col">Notification</th>
                  <th scope="col">To</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">Attempts</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Response</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                ${page.deliveries.map(
                  (d) =>
                    html`<tr data-task-id="${d.taskId}" data-state="${d.state}">
                      <td>
                        <a href="${ctx.base}/tasks/${encodeURIComponent(d.taskId)}">${d.taskId}</a>
                      </td>
                      <td>${d.notification ?? '–'}</td>
                      <td class="key">${d.to ?? '–'}</td>
                      <td>
                        <span class="state" data-field="state">${d.state}</span
                        >${d.lastError === null ? '' : html`<br /><span class="error">${d.lastError}</span>`}
                      </td>
                      <td class="num" data-field="attempts">${d.attempts}</td>
                      <td>${d.provider ?? '–'}</td>
                      <td class="key">${d.response ?? '–'}</td>
                      <td>${when(d.createdAt)}</td>
                    </tr>`,
                )}
              </tbody>
            </table>
          </div>`
    }
    ${page.nextCursor === null ? '' : html`<nav class="pages" aria-label="Pages"><a rel="next" href="${href(channel, page.nextCursor)}">Next page</a></nav>`}`;
}
