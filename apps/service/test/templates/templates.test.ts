/** Templates end to end: stored with versions, rendered once at request time, sent for real. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { finished } from '../../../../packages/offload/test/helpers.js';
import { call, Cleanups, expect, service, startPeers } from './fixtures.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const WELCOME = {
  subject: 'Welcome, {{ name }}',
  text: 'Hello {{ name }}, your plan is {{ plan | upcase }}.',
  html: '<p>Hello <b>{{ name }}</b></p>',
  pushTitle: 'Hi {{ name }}',
};

describe('templates', { timeout: 30_000 }, () => {
  it('sends a templated email with the rendered text and HTML', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers);
    await expect(200, s, 'PUT', '/api/templates/welcome', WELCOME);
    const { id } = await expect<{ id: string }>(200, s, 'POST', '/api/notifications/notify', {
      channel: 'email',
      to: 'ada@example.com',
      template: 'welcome',
      data: { name: 'Ada', plan: 'pro' },
    });
    const { mail } = await peers.smtp.nextMail();
    assert.equal(mail.subject, 'Welcome, Ada');
    assert.equal(mail.text?.trim(), 'Hello Ada, your plan is PRO.');
    assert.equal(mail.html, '<p>Hello <b>Ada</b></p>');
    assert.equal((await finished(s.runtime, id)).state, 'succeeded');
  });

  it('sends a templated webhook with the rendered body', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers);
    await expect(200, s, 'PUT', '/api/templates/welcome', WELCOME);
    await expect(200, s, 'POST', '/api/notifications/notify', {
      channel: 'webhook',
      to: `${peers.http.url}/hooks`,
      template: 'welcome',
      data: { name: 'Grace', plan: 'team' },
    });
    const received = await peers.http.nextRequest();
    const message = JSON.parse(received.body.toString()) as { data: Record<string, unknown> };
    assert.equal(message.data.subject, 'Welcome, Grace');
    assert.equal(message.data.body, 'Hello Grace, your plan is TEAM.');
    assert.deepEqual(message.data.data, { name: 'Grace', plan: 'team' });
  });

  it('answers a 400 naming a missing variable or an unknown template, and stores nothing', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers);
    await expect(200, s, 'PUT', '/api/templates/welcome', WELCOME);
    const missing = await expect(400, s, 'POST', '/api/notifications/notify', {
      channel: 'email',
      to: 'ada@example.com',
      template: 'welcome',
      data: { name: 'Ada' },
    });
    assert.equal(missing.error?.code, 'TEMPLATE_RENDER_FAILED');
    assert.match(missing.error!.message, /undefined variable: plan/);
    const unknown = await expect(400, s, 'POST', '/api/notifications/notify', {
      channel: 'email',
      to: 'ada@example.com',
      template: 'farewell',
      data: {},
    });
    assert.equal(unknown.error?.code, 'UNKNOWN_TEMPLATE');
    assert.match(unknown.error!.message, /"farewell"/);
    const both = await expect(400, s, 'POST', '/api/notifications/notify', {
      channel: 'email',
      to: 'ada@example.com',
      template: 'welcome',
      subject: 'mine',
    });
    assert.equal(both.error?.code, 'INVALID_NOTIFICATION');
    assert.equal((await s.runtime.list({ limit: 10 })).tasks.length, 0);
  });

  it('keeps every version: GET answers the current one and lists the older ones', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers);
    const first = await expect<{ version: number }>(
      200,
      s,
      'PUT',
      '/api/templates/welcome',
      WELCOME,
    );
    assert.equal(first.version, 1);
    await expect(200, s, 'PUT', '/api/templates/welcome', { ...WELCOME, subject: 'Hi {{ name }}' });
    const third = await expect<{ version: number }>(200, s, 'PUT', '/api/templates/welcome', {
      subject: 'Hey {{ name }}',
      text: 'v3',
    });
    assert.equal(third.version, 3);
    const view = await expect<{
      version: number;
      subject: string;
      html: string | null;
      versions: { version: number; subject: string }[];
    }>(200, s, 'GET', '/api/templates/welcome');
    assert.equal(view.version, 3);
    assert.equal(view.subject, 'Hey {{ name }}');
    assert.equal(view.html, null);
    assert.deepEqual(
      view.versions.map((v) => [v.version, v.subject]),
      [
        [2, 'Hi {{ name }}'],
        [1, 'Welcome, {{ name }}'],
      ],
    );
    const preview = await expect<{ subject: string; body: string; version: number }>(
      200,
      s,
      'POST',
      '/api/templates/welcome/preview',
      { data: { name: 'Ada' } },
    );
    assert.deepEqual([preview.subject, preview.body, preview.version], ['Hey Ada', 'v3', 3]);
    assert.equal((await call(s, 'GET', '/api/templates/nothing')).status, 404);
  });

  it('renders once for several recipients, and stores the rendered text once', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers);
    await expect(200, s, 'PUT', '/api/templates/welcome', WELCOME);
    const { id } = await expect<{ id: string }>(200, s, 'POST', '/api/notifications/notify', {
      channel: 'webhook',
      to: [`${peers.http.url}/a`, `${peers.http.url}/b`],
      template: 'welcome',
      data: { name: 'Lin', plan: 'free' },
    });
    // One content task holds the rendered text; the two deliveries only name it.
    const tasks = (await s.runtime.list({ limit: 10 })).tasks;
    const content = tasks.filter((t) => t.name === 'notifications.content');
    assert.equal(content.length, 1);
    assert.equal((content[0]!.payload as { body: string }).body, 'Hello Lin, your plan is FREE.');
    for (const task of tasks.filter((t) => t.name === 'notifications.webhook')) {
      assert.ok(!JSON.stringify(task.payload).includes('Hello Lin'), 'no delivery holds a copy');
    }
    const bodies = [await peers.http.nextRequest(), await peers.http.nextRequest()].map(
      (r) =>
        (JSON.parse(r.body.toString()) as { data: { body: string; notification: string } }).data,
    );
    assert.deepEqual(
      bodies.map((b) => [b.body, b.notification]),
      [
        ['Hello Lin, your plan is FREE.', id],
        ['Hello Lin, your plan is FREE.', id],
      ],
    );
  });
});
