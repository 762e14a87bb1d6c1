import { isInstance } from '../errors/is-instance.js';
import { OffloadError } from '../errors/offload-error.js';
import { InvalidOptionError } from '../options-check.js';
import { Activity } from './activity.js';
import { loadAssets, type Asset } from './assets.js';
import { loginPage, messagePage } from './detail-pages.js';
import { html, toText } from './html.js';
import {
  header,
  htmlResponse,
  jsonResponse,
  redirect,
  SECURITY_HEADERS,
  type DashboardRequest,
  type DashboardResponse,
} from './http.js';
import { layout, type PageContext } from './layout.js';
import { NOTICES, runAction, sameOrigin, withNotice } from './actions.js';
import { Live } from './live.js';
import { dashboardSettings, type DashboardOptions, type DashboardSettings } from './options.js';
import { COOKIE_NAME, cookieValue, sameText, Sessions, type Session } from './session.js';
import { StatsCache } from './stats-cache.js';
import { viewOf } from './views.js';

/** How long a page waits for fresh task counts before it shows the last ones (ms). */
const STATS_WAIT = 20;

interface Parsed {
  method: string;
  /** The path below the mount path: `/`, `/tasks`, `/tasks/12`… */
  path: string;
  query: URLSearchParams;
  form: URLSearchParams;
  session: Session | null;
  /** Whether the client wants JSON back (the script's fetch). */
  json: boolean;
  request: DashboardRequest;
}

/**
 * The dashboard, independent of any framework: `handle` takes a request and gives the answer.
 * `offload/dashboard` wraps it for Fastify, for Node's `(req, res)` and for fetch-style handlers.
 */
export class Dashboard {
  private readonly settings: DashboardSettings;
  private readonly sessions: Sessions;
  private readonly assets: Record<'css' | 'js', Asset>;
  private readonly activity: Activity;
  private readonly stats: StatsCache;
  private readonly live: Live;

  constructor(options: DashboardOptions) {
    this.settings = dashboardSettings(options);
    const { runtime, clock, secret, sessionLifetime } = this.settings;
    const now = () => clock.now();
    this.sessions = new Sessions(secret, sessionLifetime);
    this.assets = loadAssets();
    this.activity = new Activity(runtime, now);
    this.stats = new StatsCache(runtime, this.settings.statsTtl, STATS_WAIT, now, (error) =>
      this.settings.logger?.warn({ err: error }, 'dashboard: could not read the task counts'),
    );
    this.live = new Live(runtime, () => this.stats.get(), this.settings.liveInterval, now);
  }

  /** The path the dashboard answers under. */
  get basePath(): string {
    return this.settings.basePath;
  }

  /** Live clients connected now. */
  get liveClients(): number {
    return this.live.size;
  }

  /** Stops listening to the runtime and ends the live streams' timers. */
  close(): void {
    this.live.close();
    this.activity.close();
  }

  async handle(request: DashboardRequest): Promise<DashboardResponse> {
    const url = new URL(request.url, 'http://dashboard.invalid');
    const base = this.settings.basePath;
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) {
      return htmlResponse(404, 'Not found');
    }
    const path = url.pathname.slice(base.length) || '/';
    const method = request.method.toUpperCase();
    const parsed: Parsed = {
      method,
      path: path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path,
      query: url.searchParams,
      form: new URLSearchParams(method === 'POST' ? request.body : ''),
      session: this.sessions.read(
        cookieValue(header(request.headers, 'cookie'), COOKIE_NAME),
        this.settings.clock.now(),
      ),
      json: (header(request.headers, 'accept') ?? '').includes('application/json'),
      request,
    };
    try {
      return await this.route(parsed);
    } catch (error) {
      return this.failure(parsed, error);
    }
  }

  private async route(r: Parsed): Promise<DashboardResponse> {
    const { path, method } = r;
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/assets/dashboard.css') return this.asset(this.assets.css);
      if (path === '/assets/dashboard.js') return this.asset(this.assets.js);
      if (path === '/login') return this.loginForm(r, false);
    } else if (method === 'POST') {
      if (path === '/login') return this.login(r);
    } else {
      return htmlResponse(405, 'Method not allowed', { allow: 'GET, HEAD, POST' });
    }
    // Everything else needs a session when there is a login.
    if (this.settings.apiKey !== null && r.session === null) {
      if (method === 'POST')
        return this.refuse(r, 401, 'Log in first: your session is missing or expired.');
      const next = `${this.settings.basePath}${path === '/' ? '' : path}${r.query.size > 0 ? `?${r.query.toString()}` : ''}`;
      return redirect(`${this.settings.basePath}/login?next=${encodeURIComponent(next)}`);
    }
    if (method === 'POST') return this.action(r);
    return this.page(r);
  }

  private async page(r: Parsed): Promise<DashboardResponse> {
    // A HEAD asks for no body: no stream is kept open for it.
    if (r.path === '/events') return r.method === 'HEAD' ? htmlResponse(200, '') : this.events(r);
    // Without a login, a session is still needed to tie CSRF tokens to this browser.
    let setCookie: string | null = null;
    let session = r.session;
    if (session === null) {
      const made = this.sessions.create(this.settings.clock.now());
      session = made.session;
      setCookie = this.cookie(made.cookie, this.settings.sessionLifetime);
    }
    const ctx = this.context(this.sessions.csrfToken(session));
    const { settings, stats, activity } = this;
    const view = (await viewOf(r.path, r.query, { settings, stats, activity, ctx })) ?? {
      section: 'overview',
      title: 'Not found',
      main: messagePage('Not found', 'The dashboard has no such page.', {
        href: settings.basePath,
        label: 'Overview',
      }),
      status: 404,
    };
    const notice = NOTICES[r.query.get('notice') ?? ''];
    return htmlResponse(
      view.status ?? 200,
      toText(
        layout(
          ctx,
          view.section,
          view.title,
          view.main,
          notice === undefined ? null : html`${notice}`,
        ),
      ),
      setCookie === null ? {} : { 'set-cookie': setCookie },
    );
  }

  /** The POST actions, each behind a valid session and CSRF token. */
  private async action(r: Parsed): Promise<DashboardResponse> {
    const session = r.session;
    if (session === null)
      return this.refuse(r, 403, 'This action needs a session: open the page again, then retry.');
    if (
      !this.sessions.checkCsrf(session, r.form.get('csrf') ?? undefined) ||
      !sameOrigin(r.request)
    ) {
      return this.refuse(
        r,
        403,
        'The form is out of date or came from elsewhere (CSRF check failed): reload the page and retry.',
      );
    }
    if (r.path === '/logout') {
      return redirect(`${this.settings.basePath}/login`, { 'set-cookie': this.cookie('', 0) });
    }
    if (this.settings.readOnly) return this.refuse(r, 403, 'The dashboard is read-only.');
    const back = this.back(r.form.get('back'));
    if (r.path === '/names/retry-failed' && r.form.get('confirm') !== 'yes') {
      const name = r.form.get('name') ?? '';
      return redirect(
        `${this.settings.basePath}/names/retry-failed?name=${encodeURIComponent(name)}`,
      );
    }
    const done = await runAction(this.settings.runtime, r.path, r.form, (task) =>
      this.live.note(task),
    );
    if (done === null) return this.refuse(r, 404, 'The dashboard has no such action.');
    return r.json
      ? jsonResponse(200, { ok: true, notice: NOTICES[done.notice], ...done.value })
      : redirect(withNotice(back, done.notice));
  }

  private events(r: Parsed): DashboardResponse {
    const ids = new Set(
      (r.query.get('ids') ?? '')
        .split(',')
        .filter((id) => /^[A-Za-z0-9_-]{1,100}$/.test(id))
        .slice(0, 200),
    );
    return {
      status: 200,
      headers: {
        ...SECURITY_HEADERS,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      },
      stream: (send, end) => {
        send('retry: 3000\n\n');
        return this.live.add({ send, end, ids });
      },
    };
  }

  private loginForm(r: Parsed, failed: boolean): DashboardResponse {
    if (this.settings.apiKey === null) return redirect(this.settings.basePath);
    const next = this.back(r.query.get('next') ?? r.form.get('next'));
    const page = layout(
      this.context(null),
      'login',
      'Log in',
      loginPage(this.context(null), next, failed),
    );
    return htmlResponse(failed ? 401 : 200, toText(page));
  }

  private login(r: Parsed): DashboardResponse {
    const { apiKey } = this.settings;
    if (apiKey === null) return redirect(this.settings.basePath);
    if (!sameOrigin(r.request) || !sameText(r.form.get('key') ?? '', apiKey))
      return this.loginForm(r, true);
    const { cookie } = this.sessions.create(this.settings.clock.now());
    return redirect(this.back(r.form.get('next')), {
      'set-cookie': this.cookie(cookie, this.settings.sessionLifetime),
    });
  }

  private asset(asset: Asset): DashboardResponse {
    return {
      status: 200,
      headers: {
        ...SECURITY_HEADERS,
        'content-type': asset.type,
        'cache-control': 'public, max-age=31536000, immutable',
      },
      body: asset.body,
    };
  }

  private context(csrf: string | null): PageContext {
    const base = this.settings.basePath;
    return {
      base,
      csrf,
      readOnly: this.settings.readOnly,
      login: this.settings.apiKey !== null,
      notifications: this.settings.notifications !== null,
      assets: {
        css: `${base}/assets/dashboard.css?v=${this.assets.css.version}`,
        js: `${base}/assets/dashboard.js?v=${this.assets.js.version}`,
      },
    };
  }

  private cookie(value: string, maxAge: number): string {
    const parts = [
      `${COOKIE_NAME}=${value}`,
      `Path=${this.settings.basePath}`,
      `Max-Age=${Math.floor(maxAge / 1000)}`,
      'HttpOnly',
      'SameSite=Strict',
    ];
    if (this.settings.secureCookie) parts.push('Secure');
    return parts.join('; ');
  }

  /** A path to come back to: only one inside the dashboard, so no redirect leaves it. */
  private back(value: string | null | undefined): string {
    const base = this.settings.basePath;
    if (
      typeof value === 'string' &&
      (value === base || value.startsWith(`${base}/`) || value.startsWith(`${base}?`)) &&
      !/[\\\s]/.test(value)
    ) {
      return value;
    }
    return base;
  }

  private refuse(r: Parsed, status: number, message: string): DashboardResponse {
    if (r.json) return jsonResponse(status, { ok: false, error: message });
    const ctx = this.context(null);
    const link =
      status === 401
        ? { href: `${this.settings.basePath}/login`, label: 'Log in' }
        : { href: this.settings.basePath, label: 'Overview' };
    return htmlResponse(
      status,
      toText(layout(ctx, 'login', 'Refused', messagePage('Refused', message, link))),
    );
  }

  private failure(r: Parsed, error: unknown): DashboardResponse {
    if (isInstance(error, InvalidOptionError) || isInstance(error, OffloadError)) {
      const code = (error as OffloadError).code;
      const status =
        code === 'TASK_NOT_FOUND' || code === 'SCHEDULE_NOT_FOUND'
          ? 404
          : code === 'STORE_UNAVAILABLE'
            ? 503
            : isInstance(error, InvalidOptionError)
              ? 400
              : 409;
      return this.refuse(r, status, (error as Error).message);
    }
    this.settings.logger?.error({ err: error }, 'dashboard: a request failed');
    return this.refuse(r, 500, 'Something went wrong; the error is in the service log.');
  }
}
