/** The email channel, end to end: the service sends to real SMTP servers on 127.0.0.1. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import type { NotificationView } from '../../src/notification-view.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import { startSilentServer, startSmtpPeer, type SmtpPeerOptions } from '../fixtures/smtp-peer.js';
import { finished } from '../../../../packages/offload/test/helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((close) => close()));
});

async function smtp(options: SmtpPeerOptions = {}) {
  const peer = await startSmtpPeer(options);
  cleanups.push(() => peer.close());
  return peer;
}

/** A service whose SMTP_URL is `urls`, as an operator would write it. */
async function service(urls: string): Promise<TestService> {
  const settings = readChannelSettings(
    (name) =>
      ({ SMTP_URL: urls, EMAIL_FROM: 'Offload <noreply@offload.test>' })[name as string] ??
      undefined,
  );
  const s = await testService({
    channels: {
      ...DEFAULT_CHANNEL_SETTINGS,
      email: settings.email,
      deliveryTimeout: 300,
      deliveryAttempts: 2,
      deliveryBackoff: 5,
    },
  });
  cleanups.push(() => s.close());
  return s;
}

async function send(s: TestService, payload: object): Promise<string> {
  const response = await s.app.inject({
    method: 'POST',
    url: '/api/notifications',
    payload: { channel: 'email', ...payload },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ id: string }>().id;
}

describe('the email channel', { timeout: 20_000 }, () => {
  it('sends plain text and HTML, and says which server took it', async () => {
    const peer = await smtp({ auth: { user: 'mailer', pass: 's3cret-pass' } });
    const s = await service(`smtp://mailer:s3cret-pass@127.0.0.1:${peer.port}`);
    const id = await send(s, {
      to: 'ada@example.com',
      subject: 'Your report',
      body: 'It is ready.',
      html: '<p>It is <b>ready</b>.</p>',
    });
    const { envelope, mail } = await peer.nextMail();
    const task = await finished(s.runtime, id);
    assert.equal(task.state, 'succeeded');
    assert.deepEqual(envelope, { from: 'noreply@offload.test', to: ['ada@example.com'] });
    assert.equal(mail.subject, 'Your report');
    assert.equal(mail.text?.trim(), 'It is ready.');
    assert.equal(mail.html, '<p>It is <b>ready</b>.</p>');
    assert.deepEqual(mail.from?.value, [{ name: 'Offload', address: 'noreply@offload.test' }]);
    // A lone delivery is its own notification: its task id names it, stable across retries.
    assert.equal(mail.messageId, `<${id}.0@offload>`);
    assert.deepEqual((task.result as { provider: string }).provider, 'smtp-1');
    const everything = JSON.stringify([s.logs.lines, task]);
    assert.ok(
      !everything.includes('s3cret-pass'),
      'the SMTP password appeared in logs or the task',
    );
  });

  it('sends to an internationalized domain by its ASCII form, which every server takes', async () => {
    const peer = await smtp();
    const s = await service(`smtp://127.0.0.1:${peer.port}`);
    const id = await send(s, { to: 'ada@bücher.example', body: 'x' });
    await peer.nextMail();
    assert.equal((await finished(s.runtime, id)).state, 'succeeded');
    assert.deepEqual(
      peer.commands.filter((line) => line.startsWith('RCPT')),
      ['RCPT TO:<ada@xn--bcher-kva.example>'],
    );
    // The status API shows the address as it was given.
    const view = await s.app.inject(`/api/notifications/${id}`);
    assert.equal(view.json<NotificationView>().deliveries[0]!.to, 'ada@bücher.example');
  });

  it('fails at once when the server rejects the recipient for good (5xx)', async () => {
    const peer = await smtp({ recipient: () => 550 });
    const s = await service(`smtp://127.0.0.1:${peer.port}`);
    const task = await finished(s.runtime, await send(s, { to: 'gone@example.com', body: 'x' }));
    assert.equal(task.state, 'failed');
    assert.equal(task.attempts, 1);
    assert.equal(task.errors[0]!.name, 'DeliveryRejectedError');
    assert.match(task.errors[0]!.message, /smtp-1 .*550/);
  });

  it('retries a temporary rejection (4xx)', async () => {
    let tries = 0;
    const peer = await smtp({ recipient: () => (++tries === 1 ? 451 : null) });
    const s = await service(`smtp://127.0.0.1:${peer.port}`);
    const task = await finished(s.runtime, await send(s, { to: 'ada@example.com', body: 'x' }));
    assert.equal(task.state, 'succeeded');
    assert.equal(task.attempts, 2);
    assert.match(task.errors[0]!.message, /451/);
    assert.equal(peer.received.length, 1);
  });

  it('times out a server that never greets', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    const s = await service(`smtp://127.0.0.1:${silent.port}`);
    const task = await finished(s.runtime, await send(s, { to: 'ada@example.com', body: 'x' }));
    assert.equal(task.state, 'failed');
    assert.deepEqual(
      task.errors.map((e) => e.name),
      ['DeliveryTimeoutError', 'DeliveryTimeoutError'],
    );
  });

  it('fails over to the next server once the attempts on the first are used up', async () => {
    const busy = await smtp({ refuseWith: 421 });
    const spare = await smtp();
    const s = await service(`smtp://127.0.0.1:${busy.port}, smtp://127.0.0.1:${spare.port}`);
    const id = await send(s, { to: 'ada@example.com', subject: 'Failover', body: 'x' });
    const task = await finished(s.runtime, id);
    assert.equal(task.state, 'succeeded');
    assert.equal(task.maxAttempts, 4, 'two attempts on each of two servers');
    assert.equal(task.attempts, 3);
    assert.deepEqual(
      task.errors.map((e) => e.message.slice(0, 6)),
      ['smtp-1', 'smtp-1'],
    );
    assert.equal((await spare.nextMail()).mail.subject, 'Failover');
    const view = (await s.app.inject(`/api/notifications/${id}`)).json<NotificationView>();
    assert.equal(view.deliveries[0]!.provider, 'smtp-2');
    assert.match(view.deliveries[0]!.response ?? '', /^smtp-2 \(127\.0\.0\.1:\d+\): 250/);
  });
});
