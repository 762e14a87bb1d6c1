import { html, type Html } from './html.js';

/** What every page needs to know of the request it answers. */
export interface PageContext {
  /** Where the dashboard is mounted, e.g. `/dashboard`. */
  base: string;
  /** The CSRF token of the visitor's session; null on the login page. */
  csrf: string | null;
  readOnly: boolean;
  /** Whether the dashboard has its own login (a logout button is shown). */
  login: boolean;
  /** Whether the notifications page exists. */
  notifications: boolean;
  /** The versioned paths of the stylesheet and the script. */
  assets: { css: string; js: string };
}

export type Section = 'overview' | 'tasks' | 'schedules' | 'notifications' | 'login';

/** A whole page: the header with its navigation, then `main`. */
export function layout(
  ctx: PageContext,
  section: Section,
  title: string,
  main: Html,
  notice: Html | null = null,
): Html {
  const link = (to: Section, path: string, label: string) =>
    html`<a href="${ctx.base}${path}" ${to === section ? html` aria-current="page"` : ''}
      >${label}</a
    >`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>${title} · Offload</title>
        <link rel="stylesheet" href="${ctx.assets.css}" />
        <script src="${ctx.assets.js}" defer></script>
      </head>
      <body
        data-base="${ctx.base}"
        ${section === 'login' ? '' : html` data-events="${ctx.base}/events"`}
      >
        <header class="top">
          <strong class="brand">Offload</strong>
          ${
            section === 'login'
              ? ''
              : html`<nav aria-label="Dashboard">
                    ${link('overview', '', 'Overview')} ${link('tasks', '/tasks', 'Tasks')}
                    ${link('schedules', '/schedules', 'Schedules')}
                    ${ctx.notifications ? link('notifications', '/notifications', 'Notifications') : ''}
                  </nav>
                  ${ctx.readOnly ? html`<span class="badge">read-only</span>` : ''}
                  ${
                    ctx.login && ctx.csrf !== null
                      ? html`<form method="post" action="${ctx.base}/logout" class="logout">
                          <input type="hidden" name="csrf" value="${ctx.csrf}" />
                          <button type="submit">Log out</button>
                        </form>`
                      : ''
                  }`
          }
        </header>
        <main id="main">
          <p
            class="notice"
            role="status"
            aria-live="polite"
            id="notice"
            ${notice === null ? html` hidden` : ''}
          >
            ${notice}
          </p>
          ${main}
        </main>
      </body>
    </html> `;
}

/**
 * A form that POSTs one action with the CSRF token, and comes back to `back` (or, from the
 * script, is sent with fetch). Nothing when the dashboard is read-only.
 */
export function actionForm(
  ctx: PageContext,
  action: string,
  label: string,
  fields: Record<string, string>,
  { back, className = '', live = false }: { back: string; className?: string; live?: boolean },
): Html {
  if (ctx.readOnly || ctx.csrf === null) return html``;
  return html`<form
    method="post"
    action="${ctx.base}${action}"
    class="action ${className}"
    ${live ? html` data-live-action` : ''}
  >
    <input type="hidden" name="csrf" value="${ctx.csrf}" />
    <input type="hidden" name="back" value="${back}" />
    ${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}" />`)}
    <button type="submit">${label}</button>
  </form>`;
}

/** A time for people: ISO 8601 in UTC without milliseconds, or a dash. */
export function when(date: Date | null): string {
  if (date === null || Number.isNaN(date.getTime())) return '–';
  return date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, ' UTC');
}

/** A duration for people: `850 ms`, `12 s`, `4 min`, `3 h`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}
