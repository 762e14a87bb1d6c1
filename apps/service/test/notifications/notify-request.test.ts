/** Bad notify requests and channel settings are refused at once, naming what to fix. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { InvalidOptionError } from '../../../../packages/offload/src/index.js';
import { generateVapidKeys } from '../../../../packages/notifications/src/channels/web-push-crypto.js';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import { describeConfig, loadConfig } from '../../src/config.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('notify requests checked when they arrive', () => {
  let s: TestService;
  before(async () => {
    const settings = readChannelSettings(
      (name) =>
        ({
          WEBHOOK_SECRET: SECRET,
          SMTP_URL: 'smtp://127.0.0.1:1',
          EMAIL_FROM: 'noreply@offload.test',
        })[name as string],
    );
    s = await testService({ channels: { ...DEFAULT_CHANNEL_SETTINGS, ...settings } });
  });
  after(() => s.close());

  const refused: [string, object, string, RegExp][] = [
    [
      'a webhook URL that is not one',
      { channel: 'webhook', to: 'example.com/hook' },
      'INVALID_NOTIFICATION',
      /^to must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'an ftp URL',
      { channel: 'webhook', to: 'ftp://example.com/x' },
      'INVALID_NOTIFICATION',
      /^to must be an http/,
    ],
    [
      'a URL the parser would repair (no host after the slashes)',
      { channel: 'webhook', to: 'https:///example.com/hook' },
      'INVALID_NOTIFICATION',
      /^to must be an http:\/\/ or https:\/\/ URL, got "https:\/\/\/example.com\/hook"/,
    ],
    [
      'a URL with backslashes',
      { channel: 'webhook', to: 'https:\\\\example.com\\hook' },
      'INVALID_NOTIFICATION',
      /^to must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a URL with a space',
      { channel: 'webhook', to: 'https://example.com/a hook' },
      'INVALID_NOTIFICATION',
      /^to must be an http:\/\/ or https:\/\/ URL/,
    ],
    [
      'a subject of 201 characters, one of them an emoji',
      { channel: 'log', to: 'ops', subject: `${'a'.repeat(200)}\u{1F600}` },
      'INVALID_NOTIFICATION',
      /^subject must be a string of 1 to 200 characters, got a string of 201 characters$/,
    ],
    [
      'a URL with a password',
      { channel: 'webhook', to: 'https://u:p@example.com/' },
      'INVALID_NOTIFICATION',
      /^to must not carry a user name or password/,
    ],
    [
      'a private address',
      { channel: 'webhook', to: 'http://10.0.0.1/hook' },
      'INVALID_NOTIFICATION',
      /^to is refused: 10\.0\.0\.1 is not a public address: private/,
    ],
    [
      'the metadata address',
      { channel: 'webhook', to: ['https://example.com/', 'http://169.254.169.254/latest'] },
      'INVALID_NOTIFICATION',
      /^to\[1\] is refused: 169\.254\.169\.254/,
    ],
    [
      'an IPv4-mapped private address',
      { channel: 'webhook', to: 'http://[::ffff:192.168.1.1]/' },
      'INVALID_NOTIFICATION',
      /^to is refused: ::ffff:c0a8:101 is not a public address: IPv4-mapped of 192\.168\.1\.1/,
    ],
    [
      'a malformed email address',
      { channel: 'email', to: 'ada at example.com' },
      'INVALID_NOTIFICATION',
      /^to must be one email address/,
    ],
    [
      'a control character in an email address',
      { channel: 'email', to: 'ada\u0007@example.com' },
      'INVALID_NOTIFICATION',
      /^to must be one email address/,
    ],
    [
      'two addresses in one',
      { channel: 'email', to: 'a@example.com, b@example.com' },
      'INVALID_NOTIFICATION',
      /^to must be one email address/,
    ],
    [
      'a bad address in a list',
      { channel: 'email', to: ['a@example.com', 'b@'] },
      'INVALID_NOTIFICATION',
      /^to\[1\] must be one email address/,
    ],
    [
      'a subject on two lines',
      { channel: 'email', to: 'a@example.com', subject: 'Hi\r\nBcc: x@y.z' },
      'INVALID_NOTIFICATION',
      /^an email subject must be one line/,
    ],
    [
      'html outside email',
      { channel: 'webhook', to: 'https://example.com/', html: '<b>' },
      'INVALID_NOTIFICATION',
      /^html is for the email channel only/,
    ],
    [
      'an empty list',
      { channel: 'email', to: [] },
      'INVALID_NOTIFICATION',
      /^to must list 1 to 100 recipients, got 0/,
    ],
    [
      'too many recipients',
      { channel: 'log', to: Array.from({ length: 101 }, (_, i) => `u${i}`) },
      'INVALID_NOTIFICATION',
      /got 101/,
    ],
    [
      'a channel not configured here',
      { channel: 'push', to: {} },
      'CHANNEL_NOT_CONFIGURED',
      /the push channel is not configured on this service .*VAPID_PUBLIC_KEY/,
    ],
  ];
  for (const [what, payload, code, message] of refused) {
    it(`refuses ${what}`, async () => {
      const response = await s.app.inject({ method: 'POST', url: '/api/notifications', payload });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().error.code, code);
      assert.match(response.json().error.message, message);
    });
  }

  it('counts characters, not UTF-16 units: 200 emoji are a subject of 200', async () => {
    const emoji = '\u{1F600}'.repeat(200);
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: { channel: 'log', to: emoji, subject: emoji },
    });
    assert.equal(response.statusCode, 200, response.body);
    const task = await s.runtime.get(response.json().id);
    const payload = task?.payload as { to: string; subject: string };
    assert.equal(payload.to, emoji);
    assert.equal(payload.subject, emoji);
  });

  it('refuses a malformed Idempotency-Key', async () => {
    const response = await s.app.inject({
      method: 'POST',
      url: '/api/notifications/notify',
      payload: { channel: 'log', to: 'ops' },
      headers: { 'idempotency-key': 'has spaces in it' },
    });
    assert.equal(response.statusCode, 400);
    assert.equal(response.json().error.code, 'INVALID_IDEMPOTENCY_KEY');
  });

  it('answers 404 for an unknown notification, 400 for a malformed id', async () => {
    const unknown = await s.app.inject('/api/notifications/ntf_AAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().error.code, 'NOTIFICATION_NOT_FOUND');
    const malformed = await s.app.inject('/api/notifications/not%20one');
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().error.code, 'INVALID_NOTIFICATION_ID');
  });

  it('lists the demo notification under its task id', async () => {
    const { id } = (await s.app.inject({ method: 'POST', url: '/api/notifications/notify' })).json<{
      id: string;
    }>();
    const view = (await s.app.inject(`/api/notifications/${id}`)).json();
    assert.equal(view.id, id, 'a lone delivery is its own notification');
    assert.equal(view.channel, 'demo');
    assert.deepEqual(
      view.deliveries.map((d: { id: string }) => d.id),
      [id],
    );
  });
});

describe('channel settings from the environment', () => {
  const vapid = generateVapidKeys();
  const bad: [string, Record<string, string>, RegExp][] = [
    ['WEBHOOK_SECRET', { WEBHOOK_SECRET: 'plain-secret' }, /must start with "whsec_"/],
    ['WEBHOOK_SECRET', { WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }, /24 to 64 random bytes/],
    [
      'SMTP_URL',
      { SMTP_URL: 'http://mail.example.com', EMAIL_FROM: 'a@b.co' },
      /smtp:\/\/ or smtps:\/\//,
    ],
    ['EMAIL_FROM', { SMTP_URL: 'smtp://mail.example.com' }, /is required when SMTP_URL is set/],
    ['SMTP_URL', { EMAIL_FROM: 'a@b.co' }, /is required when EMAIL_FROM is set/],
    [
      'EMAIL_FROM',
      { SMTP_URL: 'smtp://m.example.com', EMAIL_FROM: 'nobody' },
      /must be an address/,
    ],
    [
      'VAPID_SUBJECT',
      { VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey },
      /is required with VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY/,
    ],
    [
      'VAPID_PRIVATE_KEY',
      {
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: generateVapidKeys().privateKey,
        VAPID_SUBJECT: 'mailto:a@b.co',
      },
      /does not belong to VAPID_PUBLIC_KEY/,
    ],
    [
      'VAPID_SUBJECT',
      {
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        VAPID_SUBJECT: 'ops',
      },
      /mailto: or https:/,
    ],
    ['DELIVERY_TIMEOUT', { DELIVERY_TIMEOUT: '0' }, /seconds from 0\.001 to 600/],
    ['DELIVERY_ATTEMPTS', { DELIVERY_ATTEMPTS: '0' }, /whole number from 1 to 100/],
    // Checked while push is off too: a bad value is not found only once the keys are set.
    ['PUSH_TTL', { PUSH_TTL: 'abc' }, /whole number from 0 to 2419200, got "abc"/],
    ['PUSH_TTL', { PUSH_TTL: '-1' }, /whole number from 0 to 2419200, got "-1"/],
    [
      'ALLOW_PRIVATE_HOSTS',
      { ALLOW_PRIVATE_HOSTS: 'http://x/y, 999.999.1.1' },
      /^ALLOW_PRIVATE_HOSTS: "http:\/\/x\/y" is not a host name or an IP address/,
    ],
    [
      'ALLOW_PRIVATE_HOSTS',
      { ALLOW_PRIVATE_HOSTS: 'hooks.internal, 999.999.1.1' },
      /^ALLOW_PRIVATE_HOSTS: "999\.999\.1\.1" is read as an IP address in URLs, and is not a valid one/,
    ],
  ];
  for (const [name, env, message] of bad) {
    it(`refuses a bad ${name}, naming it, without repeating a secret`, () => {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError);
          assert.equal(error.option, name);
          assert.match(error.message, message);
          assert.ok(!error.message.includes('c2hvcnQ'));
          return true;
        },
      );
    });
  }

  it('reads two SMTP servers, their credentials kept out of what is logged', () => {
    const config = loadConfig({
      SMTP_URL: 'smtps://user:p%40ss@mail1.example.com, smtp://mail2.example.com:2525',
      EMAIL_FROM: 'Offload <noreply@example.com>',
      WEBHOOK_SECRET: `${SECRET} ${SECRET}`,
      ALLOW_PRIVATE_HOSTS: '127.0.0.1, hooks.internal',
    });
    assert.deepEqual(config.channels.email?.providers, [
      {
        name: 'smtp-1',
        host: 'mail1.example.com',
        port: 465,
        secure: true,
        auth: { user: 'user', pass: 'p@ss' },
      },
      { name: 'smtp-2', host: 'mail2.example.com', port: 2525, secure: false, auth: null },
    ]);
    assert.equal(config.channels.webhook?.secrets.length, 2);
    assert.deepEqual(config.channels.allowPrivateHosts, ['127.0.0.1', 'hooks.internal']);
    const logged = JSON.stringify(describeConfig(config));
    assert.match(logged, /smtp-1 mail1\.example\.com:465/);
    for (const secret of ['p@ss', 'p%40ss', SECRET.slice(6)]) assert.ok(!logged.includes(secret));
  });
});
