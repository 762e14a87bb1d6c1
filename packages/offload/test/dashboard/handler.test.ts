import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  createRuntime,
  defineTask,
  memoryStore,
  PermanentError,
  type Runtime,
} from '../../src/index.js';
import { createDashboard, dashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { captureLogger } from '../helpers.js';

const HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>';
const KEY = 'a-key-of-sixteen-chars';

const fails = defineTask<{ note: string }>({
  name: 'fails',
  run: (payload) => {
    throw new PermanentError(`failed on ${payload.note}`);
  },
});
const works = defineTask<{ note: string }>({ name: 'works', run: () => ({ done: true }) });

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function runtimeWithTasks(): Promise<{ runtime: Runtime; failed: string; ok: string }> {
  const runtime = createRuntime({
    store: memoryStore(),
    tasks: [fails, works],
    logger: captureLogger(),
  });
  cleanups.push(() => runtime.stop());
  const failed = await runtime.enqueue(fails, { note: HOSTILE }, { key: HOSTILE });
  const ok = await runtime.enqueue(works, { note: 'fine' });
  await runtime.drain();
  return { runtime, failed: failed.id, ok: ok.id };
}

async function fastifyWith(
  options: Partial<DashboardOptions> & { runtime: Runtime },
): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(dashboard, { login: false, ...options });
  cleanups.push(() => app.close());
  await app.ready();
  return app;
}

/** The session cookie (name=value) a response set, and the CSRF token its page carries. */
function sessionOf(response: { headers: Record<string, unknown>; body: string }): {
  cookie: string;
  csrf: string;
} {
  const setCookie = String(response.headers['set-cookie'] ?? '');
  const csrf = /name="csrf" value="([^"]+)"/.exec(response.body)?.[1];
  assert.ok(csrf, 'the page carries a CSRF token');
  return { cookie: setCookie.split(';')[0]!, csrf };
}

const form = (fields: Record<string, string>) => ({
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  payload: new URLSearchParams(fields).toString(),
});

describe('dashboard handler (Fastify plugin)', () => {
  it('serves the overview with a strict CSP, counts, and a session cookie', async () => {
    const { runtime } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime });
    const response = await app.inject('/dashboard');
    assert.equal(response.statusCode, 200);
    const csp = String(response.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(String(response.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    assert.match(response.body, /data-count="failed">1</);
    assert.match(response.body, /data-count="succeeded">1</);
    assert.doesNotMatch(response.body, /<script>|style=/);
    assert.match(response.body, /<svg[^>]*role="img"/);
  });

  it('shows hostile payloads, keys and errors as text on every page', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime });
    for (const path of [
      '/dashboard',
      '/dashboard/tasks',
      `/dashboard/tasks/${failed}`,
      `/dashboard/tasks?keyPrefix=${encodeURIComponent('<script>')}`,
    ]) {
      const { body } = await app.inject(path);
      assert.doesNotMatch(body, /<script>alert|<img src=x/, path);
    }
    const { body } = await app.inject(`/dashboard/tasks/${failed}`);
    assert.match(body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(body, /PermanentError/);
  });

  it('retries a failed task with the CSRF token, and refuses a forged POST without it', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime });
    const { cookie, csrf } = sessionOf(await app.inject('/dashboard/tasks'));
    const forged = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'back=%2Fdashboard',
    });
    assert.equal(forged.statusCode, 403);
    const wrong = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `csrf=${csrf}x`,
    });
    assert.equal(wrong.statusCode, 403);
    const noCookie = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `csrf=${csrf}`,
    });
    assert.equal(noCookie.statusCode, 403);
    assert.equal((await runtime.get(failed))!.state, 'failed');

    const retried = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, back: `/dashboard/tasks/${failed}` }).toString(),
    });
    assert.equal(retried.statusCode, 303);
    assert.equal(retried.headers.location, `/dashboard/tasks/${failed}?notice=retried`);
    assert.equal((await runtime.get(failed))!.state, 'queued');
  });

  it('answers the script with JSON, and never redirects outside the dashboard', async () => {
    const { runtime, ok } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime });
    const { cookie, csrf } = sessionOf(await app.inject('/dashboard'));
    const headers = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
    const away = await app.inject({
      method: 'POST',
      url: '/dashboard/names/pause',
      headers,
      payload: new URLSearchParams({
        csrf,
        name: 'works',
        back: 'https://evil.example/',
      }).toString(),
    });
    assert.equal(away.headers.location, '/dashboard?notice=paused');
    assert.deepEqual(
      (await runtime.paused()).map((p) => p.name),
      ['works'],
    );
    const json = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${ok}/cancel`,
      headers: { ...headers, accept: 'application/json' },
      payload: `csrf=${csrf}`,
    });
    assert.equal(json.statusCode, 409);
    assert.match(json.json<{ error: string }>().error, /succeeded/);
  });

  it('asks before retrying every failed task of a name', async () => {
    const { runtime } = await runtimeWithTasks();
    await runtime.enqueue(fails, { note: 'two' });
    await runtime.drain();
    const app = await fastifyWith({ runtime });
    const { cookie, csrf } = sessionOf(await app.inject('/dashboard'));
    const ask = await app.inject({
      url: '/dashboard/names/retry-failed?name=fails',
      headers: { cookie },
    });
    assert.match(ask.body, /2\s+tasks\s+now/);
    assert.match(ask.body, /name="confirm" value="yes"/);
    const headers = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
    const unconfirmed = await app.inject({
      method: 'POST',
      url: '/dashboard/names/retry-failed',
      headers,
      payload: new URLSearchParams({ csrf, name: 'fails' }).toString(),
    });
    assert.equal(unconfirmed.statusCode, 303);
    assert.equal((await runtime.list({ state: 'failed' })).tasks.length, 2);
    const confirmed = await app.inject({
      method: 'POST',
      url: '/dashboard/names/retry-failed',
      headers,
      payload: new URLSearchParams({ csrf, name: 'fails', confirm: 'yes' }).toString(),
    });
    assert.equal(confirmed.statusCode, 303);
    assert.equal((await runtime.list({ state: 'failed' })).tasks.length, 0);
  });

  it('lists schedules with their next runs, and pauses and resumes them', async () => {
    const { runtime } = await runtimeWithTasks();
    await runtime.schedules.set('hourly <b>', { every: 3_600_000 }, works, { note: 'x' });
    const app = await fastifyWith({ runtime });
    const page = await app.inject('/dashboard/schedules');
    assert.match(page.body, /hourly &lt;b&gt;/);
    assert.equal(page.body.match(/<li>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/li>/g)?.length, 3);
    const { cookie, csrf } = sessionOf(page);
    const headers = { cookie, 'content-type': 'application/x-www-form-urlencoded' };
    const fields = { csrf, name: 'hourly <b>', back: '/dashboard/schedules' };
    const paused = await app.inject({
      method: 'POST',
      url: '/dashboard/schedules/pause',
      headers,
      payload: new URLSearchParams(fields).toString(),
    });
    assert.equal(paused.headers.location, '/dashboard/schedules?notice=schedule-paused');
    assert.equal((await runtime.schedules.get('hourly <b>'))!.paused, true);
    const again = await app.inject({
      url: '/dashboard/schedules?notice=schedule-paused',
      headers: { cookie },
    });
    assert.match(again.body, /The schedule was paused\./);
    assert.match(again.body, />\s*Resume\s*</);
    await app.inject({
      method: 'POST',
      url: '/dashboard/schedules/resume',
      headers,
      payload: new URLSearchParams(fields).toString(),
    });
    assert.equal((await runtime.schedules.get('hourly <b>'))!.paused, false);
  });

  it('read-only: shows no action and refuses every POST', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime, readOnly: true });
    const page = await app.inject(`/dashboard/tasks/${failed}`);
    assert.doesNotMatch(page.body, />\s*(Retry|Cancel|Pause|Resume)\s*</);
    const overview = await app.inject('/dashboard');
    assert.doesNotMatch(overview.body, />\s*(Retry failed|Pause|Resume)\s*</);
    const { cookie } = sessionOf({ ...page, body: '<input name="csrf" value="x">' });
    const csrfPage = await app.inject({ url: '/dashboard', headers: { cookie } });
    assert.doesNotMatch(csrfPage.body, /name="csrf"/);
    const refused = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'csrf=anything',
    });
    assert.equal(refused.statusCode, 403);
    assert.equal((await runtime.get(failed))!.state, 'failed');
  });

  it('with a login: redirects pages to it, refuses actions, and logs in with the key', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime, login: { apiKey: KEY } });
    for (const path of [
      '/dashboard',
      '/dashboard/tasks',
      `/dashboard/tasks/${failed}`,
      '/dashboard/schedules',
      '/dashboard/events',
    ]) {
      const response = await app.inject(path);
      assert.equal(response.statusCode, 303, path);
      assert.match(String(response.headers.location), /^\/dashboard\/login\?next=/);
    }
    const action = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'csrf=x',
    });
    assert.equal(action.statusCode, 401);
    const forgedCookie = await app.inject({
      url: '/dashboard',
      headers: { cookie: 'offload_dashboard=eyJpIjoiYSIsImUiOjk5OTk5OTk5OTk5OTl9.bad' },
    });
    assert.equal(forgedCookie.statusCode, 303);

    const login = await app.inject('/dashboard/login');
    assert.match(login.body, /<label for="api-key">API key<\/label>/);
    assert.match(login.body, /type="password"/);
    const wrong = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      ...form({ key: 'not-the-key', next: '/dashboard/tasks' }),
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const right = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      ...form({ key: KEY, next: '/dashboard/tasks' }),
    });
    assert.equal(right.statusCode, 303);
    assert.equal(right.headers.location, '/dashboard/tasks');
    const cookie = String(right.headers['set-cookie']).split(';')[0]!;
    assert.match(String(right.headers['set-cookie']), /HttpOnly; SameSite=Strict/);
    const page = await app.inject({ url: '/dashboard', headers: { cookie } });
    assert.equal(page.statusCode, 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const retried = await app.inject({
      method: 'POST',
      url: `/dashboard/tasks/${failed}/retry`,
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `csrf=${csrf}`,
    });
    assert.equal(retried.statusCode, 303);
    assert.equal((await runtime.get(failed))!.state, 'queued');
  });

  it('serves its assets and refuses unknown options', async () => {
    const { runtime } = await runtimeWithTasks();
    const app = await fastifyWith({ runtime });
    const js = await app.inject('/dashboard/assets/dashboard.js');
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    const css = await app.inject('/dashboard/assets/dashboard.css');
    assert.match(css.body, /prefers-color-scheme: dark/);
    assert.throws(
      () => createDashboard({ runtime, login: false, readonly: true } as DashboardOptions),
      /readOnly/,
    );
    assert.throws(() => createDashboard({ runtime } as DashboardOptions), /login/);
  });
});

describe('dashboard handler (Node and fetch)', () => {
  async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server: Server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('answers pages and actions over a real socket as (req, res)', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const mounted = createDashboard({ runtime, login: false, basePath: '/admin/offload' });
    cleanups.push(() => mounted.close());
    const url = await listen(mounted.node);
    const page = await fetch(`${url}/admin/offload/tasks?state=failed`);
    assert.equal(page.status, 200);
    const body = await page.text();
    assert.match(body, new RegExp(`/admin/offload/tasks/${failed}`));
    const { cookie, csrf } = sessionOf({
      headers: { 'set-cookie': page.headers.get('set-cookie') },
      body,
    });
    const retried = await fetch(`${url}/admin/offload/tasks/${failed}/retry`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', origin: url },
      body: `csrf=${csrf}`,
    });
    assert.equal(retried.status, 303);
    assert.equal((await runtime.get(failed))!.state, 'queued');
    const elsewhere = await fetch(`${url}/admin/offload/tasks/${failed}/cancel`, {
      method: 'POST',
      headers: {
        cookie,
        'content-type': 'application/x-www-form-urlencoded',
        origin: 'https://evil.example',
      },
      body: `csrf=${csrf}`,
    });
    assert.equal(elsewhere.status, 403);
    assert.equal((await runtime.get(failed))!.state, 'queued');
  });

  it('streams counts and task changes as server-sent events', async () => {
    const { runtime, failed } = await runtimeWithTasks();
    const mounted = createDashboard({ runtime, login: false, liveInterval: 20 });
    cleanups.push(() => mounted.close());
    const url = await listen(mounted.node);
    const frames: string[] = [];
    const request = httpRequest(`${url}/dashboard/events?ids=${failed}`);
    cleanups.push(() => void request.destroy());
    const got = (pattern: RegExp) =>
      new Promise<void>((resolve) => {
        const check = () =>
          frames.some((f) => pattern.test(f)) ? resolve() : setTimeout(check, 10);
        check();
      });
    request.on('response', (response) => {
      assert.equal(response.headers['content-type'], 'text/event-stream; charset=utf-8');
      response.setEncoding('utf8').on('data', (chunk: string) => frames.push(chunk));
    });
    request.end();
    await got(/event: counts/);
    assert.equal(mounted.dashboard.liveClients, 1);
    await runtime.retry(failed);
    await runtime.drain();
    await got(
      new RegExp(`event: tasks\\ndata: .*"id":"${failed}","state":"failed","attempts":"2 / `),
    );
    request.destroy();
    await new Promise<void>((resolve) => {
      const check = () => (mounted.dashboard.liveClients === 0 ? resolve() : setTimeout(check, 10));
      check();
    });
  });

  it('answers as a fetch-style handler', async () => {
    const { runtime, ok } = await runtimeWithTasks();
    const mounted = createDashboard({ runtime, login: { apiKey: KEY } });
    cleanups.push(() => mounted.close());
    const redirected = await mounted.fetch(new Request('http://localhost/dashboard'));
    assert.equal(redirected.status, 303);
    const login = await mounted.fetch(
      new Request('http://localhost/dashboard/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: KEY, next: `/dashboard/tasks/${ok}` }),
      }),
    );
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const page = await mounted.fetch(
      new Request(`http://localhost/dashboard/tasks/${ok}`, { headers: { cookie } }),
    );
    assert.equal(page.status, 200);
    assert.match(await page.text(), /&quot;done&quot;: true/);
  });
});
