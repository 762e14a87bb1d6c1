/**
 * `offload/dashboard`: a web UI to see and steer tasks, schedules and paused names, over the
 * runtime's API (so it works on every store). Pages are rendered on the server; the one script
 * and stylesheet are served by the dashboard itself. See docs/dashboard.md.
 *
 * ```ts
 * import { dashboard } from 'offload/dashboard';
 * await app.register(dashboard, { runtime, login: { apiKey: process.env.OFFLOAD_API_KEY! } });
 * ```
 *
 * Elsewhere: `createDashboard(options)` gives `node` (Node's `(req, res)`, Express) and `fetch`
 * (`(Request) => Promise<Response>`, Hono) handlers.
 */
import { fetchHandler, nodeHandler } from './adapters.js';
import { Dashboard } from './dashboard.js';
import { dashboardPlugin } from './fastify.js';
import type { DashboardOptions } from './options.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

export { Dashboard } from './dashboard.js';
export type { DashboardOptions } from './options.js';
export type { DashboardRequest, DashboardResponse } from './http.js';
export type { DeliveryRow, DeliverySource } from './notifications-page.js';
export { escapeHtml, html, type Html } from './html.js';

/** The dashboard with its handlers for Node and for fetch-style frameworks. */
export interface MountedDashboard {
  dashboard: Dashboard;
  /** For `http.createServer`, Express and Connect. */
  node: (req: IncomingMessage, res: ServerResponse) => void;
  /** For Hono, Bun, Deno: `(Request) => Promise<Response>`. */
  fetch: (request: Request) => Promise<Response>;
  /** Stops the dashboard's listeners and live streams. */
  close: () => void;
}

export function createDashboard(options: DashboardOptions): MountedDashboard {
  const dashboard = new Dashboard(options);
  return {
    dashboard,
    node: nodeHandler(dashboard),
    fetch: fetchHandler(dashboard),
    close: () => dashboard.close(),
  };
}

/** The Fastify plugin. */
export const dashboard = dashboardPlugin;
export default dashboard;
