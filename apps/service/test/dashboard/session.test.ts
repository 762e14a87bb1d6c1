/** The service's dashboard over a real socket: its login, session cookie and CSRF tokens. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { finished } from '../../../../packages/offload/test/helpers.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const KEY = 'dashboard-session-key-0123456789';
const PAGES = [
  '',
  '/',
  '/tasks',
  '/tasks?state=failed',
  '/tasks/1',
  '/schedules',
  '/notifications',
  '/events',
  '/names/retry-failed?name=x',
];

let services: TestService[] = [];
afterEach(async () => {
  await Promise.all(services.map((s) => s.close()));
  services = [];
});

async function started(apiKey?: string): Promise<{ s: TestService; url: string; id: string }> {
  const s = await testService({ apiKey, logLevel: 'warn' });
  services.push(s);
  const url = await s.listen();
  const response = await fetch(`${url}/api/notifications/notify`, {
    method: 'POST',
    headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
  });
  const { id } = (await response.json()) as { id: string };
  await finished(s.runtime, id);
  return { s, url, id };
}

async function post(
  url: string,
  fields: Record<string, string>,
  cookie?: string,
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(fields),
  });
}

/** Every action, with the fields a page's form sends. */
function actions(id: string): [string, Record<string, string>][] {
  return [
    [`/tasks/${id}/cancel`, {}],
    [`/tasks/${id}/retry`, {}],
    ['/names/pause', { name: 'notifications.demo' }],
    ['/names/resume', { name: 'notifications.demo' }],
    ['/names/retry-failed', { name: 'notifications.demo', confirm: 'yes' }],
    ['/schedules/pause', { name: 'nightly' }],
    ['/logout', {}],
  ];
}

describe('the service dashboard: login, session and CSRF', { timeout: 30_000 }, () => {
  it('without the session cookie, every page redirects to the login page and every action fails', async () => {
    const { s, url, id } = await started(KEY);
    for (const page of PAGES) {
      const response = await fetch(`${url}/dashboard${page}`, { redirect: 'manual' });
      assert.equal(response.status, 303, page);
      assert.match(
        response.headers.get('location') ?? '',
        /^\/dashboard\/login\?next=%2Fdashboard/,
        page,
      );
    }
    await s.runtime.pause('notifications.log');
    for (const [path, fields] of actions(id)) {
      const response = await post(`${url}/dashboard${path}`, { ...fields, csrf: 'guessed' });
      assert.ok(response.status === 401 || response.status === 403, `${path}: ${response.status}`);
    }
    assert.equal((await s.runtime.get(id))!.state, 'succeeded');
    assert.deepEqual(
      (await s.runtime.paused()).map((p) => p.name),
      ['notifications.log'],
    );
    // The login page itself and the assets stay open; the API still wants its bearer token.
    assert.equal((await fetch(`${url}/dashboard/login`)).status, 200);
    assert.equal((await fetch(`${url}/dashboard/assets/dashboard.js`)).status, 200);
  });

  it('a forged POST without the token changes nothing, and the token of one session fits no other', async () => {
    const { s, url, id } = await started(KEY);
    const login = await post(`${url}/dashboard/login`, { key: KEY, next: '/dashboard' });
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const other = (await post(`${url}/dashboard/login`, { key: KEY })).headers
      .get('set-cookie')!
      .split(';')[0]!;
    const page = await (
      await fetch(`${url}/dashboard/tasks/${id}`, { headers: { cookie } })
    ).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;

    for (const [path, fields] of actions(id)) {
      assert.equal(
        (await post(`${url}/dashboard${path}`, fields, cookie)).status,
        403,
        `${path} without a token`,
      );
      assert.equal(
        (await post(`${url}/dashboard${path}`, { ...fields, csrf }, other)).status,
        403,
        `${path} in another session`,
      );
    }
    assert.equal((await s.runtime.get(id))!.state, 'succeeded');
    assert.deepEqual(await s.runtime.paused(), []);
    // The session is still good: the logout above was refused too.
    assert.equal(
      (await fetch(`${url}/dashboard`, { headers: { cookie }, redirect: 'manual' })).status,
      200,
    );
    const paused = await post(
      `${url}/dashboard/names/pause`,
      { name: 'notifications.demo', csrf },
      cookie,
    );
    assert.equal(paused.status, 303);
    assert.deepEqual(
      (await s.runtime.paused()).map((p) => p.name),
      ['notifications.demo'],
    );
    // The cookie opens the dashboard only, not the API.
    assert.equal((await fetch(`${url}/api/tasks/${id}`, { headers: { cookie } })).status, 401);
  });

  it('a connected live page does not hold the service open when it closes', async () => {
    const { s, url } = await started();
    const response = await fetch(`${url}/dashboard/events`);
    assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = response.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /retry: 3000/);
    const started_ = performance.now();
    await s.close();
    assert.ok(performance.now() - started_ < 5000, 'closed within the drain window');
    for (;;) if ((await reader.read()).done) break;
  });

  it('without a key: pages open, actions still need the session and its token', async () => {
    const { s, url, id } = await started();
    const page = await fetch(`${url}/dashboard/tasks/${id}`);
    assert.equal(page.status, 200);
    assert.equal((await post(`${url}/dashboard/tasks/${id}/cancel`, { csrf: 'x' })).status, 403);
    assert.equal((await s.runtime.get(id))!.state, 'succeeded');
  });
});
