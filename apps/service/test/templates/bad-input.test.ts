/**
 * Bad input to templates, recipients and suppressions: each a 4xx with the error envelope, at
 * request time. A template reads its data and nothing else, and a render that runs too long or
 * grows too large is stopped.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestService } from '../fixtures/service-harness.js';
import { call, Cleanups, expect, service, startPeers } from './fixtures.js';

const cleanups = new Cleanups();
let s: TestService;
before(async () => {
  s = await service(cleanups, await startPeers(cleanups));
});
// One service for the file: its tests store nothing that another reads.
after(() => cleanups.run());

/** Checks the envelope of a 4xx answer and returns its code and message. */
async function refused(
  status: number,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: object,
): Promise<{ code: string; message: string }> {
  const answer = await call(s, method, url, payload);
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.ok, false);
  assert.deepEqual(Object.keys(answer.body.error ?? {}), ['code', 'message']);
  return answer.body.error!;
}

async function renderRefused(name: string, text: string, data: object = {}): Promise<string> {
  await expect(200, s, 'PUT', `/api/templates/${name}`, { subject: 'x', text });
  const preview = await refused(400, 'POST', `/api/templates/${name}/preview`, { data });
  assert.equal(preview.code, 'TEMPLATE_RENDER_FAILED');
  const notify = await refused(400, 'POST', '/api/notifications/notify', {
    channel: 'log',
    to: 'ops',
    template: name,
    data,
  });
  assert.equal(notify.code, 'TEMPLATE_RENDER_FAILED');
  return preview.message;
}

describe('hostile templates', { timeout: 30_000 }, () => {
  it('refuses include, render and layout when the template is put: no file is read', async () => {
    for (const source of [
      '{% include "/etc/passwd" %}',
      '{% render "../../package.json" %}',
      '{% layout "default" %}hi',
      '{%- include name -%}',
    ]) {
      const error = await refused(400, 'PUT', '/api/templates/files', {
        subject: 'x',
        text: source,
      });
      assert.equal(error.code, 'INVALID_TEMPLATE', source);
      assert.match(error.message, /cannot read other templates or files/);
    }
    assert.equal((await call(s, 'GET', '/api/templates/files')).status, 404);
  });

  it('reads nothing but its data: no environment, no globals, no prototype', async () => {
    assert.match(
      await renderRefused('env', '{{ process.env.HOME }}'),
      /undefined variable: process/,
    );
    assert.match(await renderRefused('global', '{{ global }}{{ require }}'), /undefined variable/);
    assert.match(
      await renderRefused('proto', '{{ user.constructor.name }}', { user: { name: 'ada' } }),
      /undefined variable: user.constructor/,
    );
    assert.match(
      await renderRefused('proto2', '{{ user.__proto__ }}', { user: { name: 'ada' } }),
      /undefined variable/,
    );
    const filter = await refused(400, 'PUT', '/api/templates/filter', {
      subject: 'x',
      text: '{{ "x" | eval }}',
    });
    assert.equal(filter.code, 'INVALID_TEMPLATE');
    assert.match(filter.message, /undefined filter: eval/);
  });

  it('stops a render that runs too long or grows too large, with a 400', async () => {
    assert.match(
      await renderRefused(
        'loop',
        '{% for i in (1..1000000000) %}{% for j in (1..1000000000) %}x{% endfor %}{% endfor %}',
      ),
      /limit exceeded/,
    );
    assert.match(
      await renderRefused(
        'grow',
        '{% assign s = "xxxxxxxxxx" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}',
      ),
      /limit exceeded/,
    );
    assert.match(
      await renderRefused('long', '{% for i in (1..2000) %}0123456789{% endfor %}'),
      /renders a text of 20000 characters; at most 10000/,
    );
  });

  it('refuses a template source that is not Liquid, too large, or has unknown fields', async () => {
    const cases: [object, string][] = [
      [{ subject: 'x', text: '{% if %}' }, 'text'],
      [{ subject: '{{ unclosed', text: 'x' }, 'subject'],
      [{ subject: 'x' }, 'text'],
      [{ subject: 'x', text: 'y'.repeat(20_001) }, 'text'],
      [{ subject: 'x', text: 'y', script: 'z' }, 'script'],
    ];
    for (const [body, field] of cases) {
      const error = await refused(400, 'PUT', '/api/templates/bad', body);
      assert.equal(error.code, 'INVALID_TEMPLATE');
      assert.match(error.message, new RegExp(field));
    }
    assert.equal(
      (await refused(400, 'PUT', '/api/templates/bad%20name', { subject: 'x', text: 'y' })).code,
      'INVALID_TEMPLATE',
    );
  });
});

describe('bad recipients', { timeout: 30_000 }, () => {
  it('refuses bad recipient ids, in the path and in a notify request', async () => {
    for (const id of ['bad%20id', '-leading', '%C3%A9', 'a%2Fb', 'x%00']) {
      const error = await refused(400, 'PUT', `/api/recipients/${id}`, { email: 'a@example.com' });
      assert.equal(error.code, 'INVALID_RECIPIENT', id);
    }
    const long = await refused(414, 'PUT', `/api/recipients/${'x'.repeat(101)}`, {});
    assert.equal(long.code, 'URL_TOO_LONG');
    for (const recipients of [['../etc'], [42], [], 'u1', ['u1', 'u1']]) {
      const error = await refused(400, 'POST', '/api/notifications/notify', { recipients });
      assert.ok(['INVALID_RECIPIENT', 'INVALID_NOTIFICATION'].includes(error.code), error.code);
    }
  });

  it('refuses bad time zones, addresses and unknown fields', async () => {
    for (const [body, field] of [
      [{ timezone: 'Mars/Olympus_Mons' }, 'timezone'],
      [{ timezone: 'Europe/Berlin; DROP TABLE' }, 'timezone'],
      [{ timezone: 7 }, 'timezone'],
      [{ email: 'not an address' }, 'email'],
      [{ webhook: 'ftp://example.com' }, 'webhook'],
      [{ push: [{ endpoint: 'https://push.example.com' }] }, 'push'],
      [{ phone: '+4912345' }, 'phone'],
    ] as const) {
      const error = await refused(400, 'PUT', '/api/recipients/u1', body);
      assert.equal(error.code, 'INVALID_RECIPIENT');
      assert.match(error.message, new RegExp(field));
    }
    assert.equal((await call(s, 'GET', '/api/recipients/u1')).status, 404, 'nothing was stored');
  });

  it('refuses topics that are not declared, in preferences and in a notify request', async () => {
    const prefs = await refused(400, 'PUT', '/api/recipients/u1', {
      email: 'a@example.com',
      preferences: { lottery: { email: false } },
    });
    assert.equal(prefs.code, 'UNKNOWN_TOPIC');
    assert.match(prefs.message, /lottery.*billing, security, news/);
    const channel = await refused(400, 'PUT', '/api/recipients/u1', {
      preferences: { billing: { fax: false } },
    });
    assert.equal(channel.code, 'INVALID_RECIPIENT');
    const notify = await refused(400, 'POST', '/api/notifications/notify', {
      recipients: ['u1'],
      topic: 'lottery',
      body: 'x',
    });
    assert.equal(notify.code, 'UNKNOWN_TOPIC');
    const topicWithTo = await refused(400, 'POST', '/api/notifications/notify', {
      channel: 'log',
      to: 'ops',
      topic: 'billing',
    });
    assert.equal(topicWithTo.code, 'INVALID_NOTIFICATION');
  });

  it('refuses bad suppression ids and cursors', async () => {
    assert.equal(
      (await refused(400, 'DELETE', '/api/suppressions/nope')).code,
      'INVALID_SUPPRESSION_ID',
    );
    assert.equal((await refused(400, 'GET', '/api/suppressions?limit=0')).code, 'INVALID_QUERY');
    assert.equal((await refused(400, 'GET', '/api/suppressions?after=x')).code, 'INVALID_CURSOR');
    assert.equal(
      (await refused(404, 'DELETE', `/api/suppressions/sup_${'A'.repeat(22)}`)).code,
      'SUPPRESSION_NOT_FOUND',
    );
  });
});
