/** The webhook channel, end to end: the service POSTs to a real local server (loopback only). */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
  type ChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import type { NotificationView } from '../../src/notification-view.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import {
  startHttpPeer,
  type HttpPeer,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import { finished } from '../../../../packages/offload/test/helpers.js';

const SECRETS = [1, 2].map(() => `whsec_${randomBytes(32).toString('base64')}`);

let services: TestService[] = [];
let peers: HttpPeer[] = [];
afterEach(async () => {
  await Promise.all([...services, ...peers].map((x) => x.close()));
  services = [];
  peers = [];
});

async function setup(
  handler?: Parameters<typeof startHttpPeer>[0],
  channels: Partial<ChannelSettings> = {},
  resolve?: Parameters<typeof testService>[2],
): Promise<{ s: TestService; peer: HttpPeer }> {
  const peer = await startHttpPeer(handler);
  peers.push(peer);
  const settings = readChannelSettings((name) =>
    name === 'WEBHOOK_SECRET' ? SECRETS.join(' ') : undefined,
  );
  const s = await testService(
    {
      channels: {
        ...DEFAULT_CHANNEL_SETTINGS,
        webhook: settings.webhook,
        allowPrivateHosts: ['127.0.0.1'],
        deliveryTimeout: 300,
        deliveryAttempts: 2,
        deliveryBackoff: 5,
        ...channels,
      },
    },
    undefined,
    resolve,
  );
  services.push(s);
  return { s, peer };
}

async function notify(
  s: TestService,
  payload: object,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: { id: string; error?: { code: string; message: string } } }> {
  const response = await s.app.inject({
    method: 'POST',
    url: '/api/notifications/notify',
    payload,
    headers,
  });
  return { status: response.statusCode, body: response.json() };
}

async function deliveries(s: TestService, id: string): Promise<NotificationView> {
  const response = await s.app.inject(`/api/notifications/${id}`);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<NotificationView>();
}

describe('the webhook channel', { timeout: 20_000 }, () => {
  it('POSTs the notification signed as Standard Webhooks says, with every secret', async () => {
    const { s, peer } = await setup();
    const { status, body } = await notify(s, {
      channel: 'webhook',
      to: `${peer.url}/hooks?team=ops`,
      subject: 'Deploy',
      body: 'v2 is out',
      data: { build: 42 },
    });
    assert.equal(status, 200);
    const received = await peer.nextRequest();
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'succeeded');
    assert.equal(received.method, 'POST');
    assert.equal(received.url, '/hooks?team=ops');
    assert.equal(received.headers['content-type'], 'application/json');
    const headers = {
      'webhook-id': String(received.headers['webhook-id']),
      'webhook-timestamp': String(received.headers['webhook-timestamp']),
      'webhook-signature': String(received.headers['webhook-signature']),
    };
    assert.equal(headers['webhook-signature'].split(' ').length, 2);
    // Verified by an independent implementation of the specification, with each secret alone.
    for (const secret of SECRETS) {
      const message = new Webhook(secret).verify(received.body.toString(), headers) as {
        type: string;
        data: object;
      };
      assert.equal(message.type, 'notification');
      assert.deepEqual(message.data, {
        notification: (await deliveries(s, body.id)).id,
        subject: 'Deploy',
        body: 'v2 is out',
        data: { build: 42 },
      });
    }
    assert.throws(() =>
      new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(
        received.body.toString(),
        headers,
      ),
    );
    assert.deepEqual(task.result, { provider: 'http', response: '204 No Content' });
    const view = await deliveries(s, body.id);
    assert.equal(view.channel, 'webhook');
    assert.deepEqual(
      view.deliveries.map((d) => [d.id, d.state, d.attempts, d.provider, d.to]),
      [[body.id, 'succeeded', 1, 'http', `${peer.url}/hooks?team=ops`]],
    );
    const metrics = (await s.app.inject('/metrics')).body;
    assert.match(
      metrics,
      /^offload_notification_calls_total\{channel="webhook",provider="http",outcome="delivered"\} 1$/m,
    );
  });

  it('fails at once on a 4xx, and never sends the secret anywhere', async () => {
    const { s, peer } = await setup((_request, response) => response.writeHead(422).end('bad'));
    const { body } = await notify(s, { channel: 'webhook', to: peer.url });
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'failed');
    assert.equal(task.attempts, 1);
    assert.equal(task.errors.at(-1)?.name, 'DeliveryRejectedError');
    assert.match(task.errors.at(-1)?.message ?? '', /answered 422 Unprocessable Entity: bad/);
    const everything = JSON.stringify([s.logs.lines, task]);
    for (const secret of SECRETS) {
      assert.ok(!everything.includes(secret.slice(6)), 'a secret appeared in logs or the task');
    }
  });

  it('retries a 5xx, and honours Retry-After on a 429 without using an attempt', async () => {
    const answers = [503, 429, 200];
    const { s, peer } = await setup((_request, response) => {
      const status = answers.shift()!;
      response.writeHead(status, status === 429 ? { 'retry-after': '0' } : {}).end();
    });
    const { body } = await notify(s, { channel: 'webhook', to: peer.url });
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'succeeded');
    assert.equal(peer.requests.length, 3);
    assert.deepEqual(
      task.errors.map((e) => [e.name, e.attempt]),
      [
        ['Error', 1],
        ['RetryLaterError', 2],
      ],
    );
    assert.equal(task.attempts, 2, 'the 429 with Retry-After gave its attempt back');
    // One "webhook-id" for every try, so that the receiver can drop duplicates.
    assert.equal(new Set(peer.requests.map((r) => r.headers['webhook-id'])).size, 1);
  });

  it('times out a receiver that does not answer, then fails after the attempts', async () => {
    const { s, peer } = await setup(() => {
      // never answers
    });
    const { body } = await notify(s, { channel: 'webhook', to: peer.url });
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'failed');
    assert.deepEqual(
      task.errors.map((e) => e.name),
      ['DeliveryTimeoutError', 'DeliveryTimeoutError'],
    );
    assert.match(task.errors[0]!.message, /did not answer within 300 ms/);
  });

  it('does not follow a redirect', async () => {
    const { s, peer } = await setup((_request, response) =>
      response.writeHead(307, { location: 'http://127.0.0.1:1/elsewhere' }).end(),
    );
    const { body } = await notify(s, { channel: 'webhook', to: peer.url });
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'failed');
    assert.match(
      task.errors[0]!.message,
      /redirect to http:\/\/127\.0\.0\.1:1\/elsewhere.*not followed/,
    );
    assert.ok(peer.requests.every((r) => r.url === '/'));
  });

  it('disables a URL that answered 410 Gone', async () => {
    const { s, peer } = await setup((_request, response) => response.writeHead(410).end());
    const first = await notify(s, { channel: 'webhook', to: `${peer.url}/old` });
    const task = await finished(s.runtime, first.body.id);
    assert.equal(task.state, 'failed');
    assert.equal(task.attempts, 1);
    assert.equal(task.errors[0]!.name, 'RecipientGoneError');
    const connections = peer.connections();
    const second = await notify(s, { channel: 'webhook', to: `${peer.url}/old` });
    const again = await finished(s.runtime, second.body.id);
    assert.equal(again.state, 'failed');
    assert.match(again.errors[0]!.message, /^not sent: .*410 Gone/);
    assert.equal(peer.connections(), connections, 'no request to a URL that is gone');
  });

  it('refuses a loopback URL when it is not allowed: a 400 for an address, no connection for a name', async () => {
    const resolve = { resolve: async () => [{ address: '127.0.0.1', family: 4 as const }] };
    const { s, peer } = await setup(undefined, { allowPrivateHosts: [] }, resolve);
    const literal = await notify(s, { channel: 'webhook', to: `${peer.url}/hook` });
    assert.equal(literal.status, 400);
    assert.match(
      literal.body.error!.message,
      /^to is refused: 127\.0\.0\.1 is not a public address: loopback/,
    );
    const ipv6 = await notify(s, { channel: 'webhook', to: [`http://[::1]:${peer.port}/`] });
    assert.equal(ipv6.status, 400);
    assert.match(ipv6.body.error!.message, /^to\[0\] is refused: ::1 is not a public address/);
    const named = await notify(s, {
      channel: 'webhook',
      to: `http://hooks.example.test:${peer.port}/`,
    });
    assert.equal(named.status, 200);
    const task = await finished(s.runtime, named.body.id);
    assert.equal(task.state, 'failed');
    assert.equal(task.errors[0]!.name, 'RefusedTargetError');
    assert.match(task.errors[0]!.message, /hooks\.example\.test: it resolves to 127\.0\.0\.1/);
    assert.equal(peer.connections(), 0);
  });

  it('delivers to each of several recipients, and lists them under one notification', async () => {
    const { s, peer } = await setup();
    const to = [`${peer.url}/a`, `${peer.url}/b`, `${peer.url}/c`];
    const { status, body } = await notify(s, { channel: 'webhook', to, body: 'hi' });
    assert.equal(status, 200);
    assert.match(body.id, /^ntf_/);
    const view = await deliveries(s, body.id);
    assert.deepEqual(
      view.deliveries.map((d) => [d.index, d.to]),
      to.map((url, i) => [i, url]),
    );
    for (const delivery of view.deliveries) await finished(s.runtime, delivery.id);
    assert.deepEqual(peer.requests.map((r) => r.url).sort(), ['/a', '/b', '/c']);
    const after = await deliveries(s, view.deliveries[1]!.id);
    assert.equal(after.id, body.id, 'a delivery task id finds its notification');
    assert.ok(after.deliveries.every((d) => d.state === 'succeeded' && d.provider === 'http'));
  });

  it('answers a repeated request with the same Idempotency-Key once, and refuses a different one', async () => {
    const { s, peer } = await setup();
    const request = { channel: 'webhook', to: [`${peer.url}/x`, `${peer.url}/y`], body: 'once' };
    const headers = { 'idempotency-key': 'order-42-shipped' };
    const first = await notify(s, request, headers);
    // The same request, its keys in another order: the same request.
    const second = await notify(s, { body: 'once', to: request.to, channel: 'webhook' }, headers);
    assert.deepEqual([first.status, second.status], [200, 200]);
    assert.equal(second.body.id, first.body.id);
    const view = await deliveries(s, first.body.id);
    assert.equal(view.deliveries.length, 2);
    for (const delivery of view.deliveries) await finished(s.runtime, delivery.id);
    const third = await notify(s, request, headers);
    assert.equal(third.body.id, first.body.id);
    await s.runtime.drain();
    assert.equal(peer.requests.length, 2, 'nothing was delivered twice');
    assert.deepEqual(
      (await s.runtime.list()).tasks.map((t) => t.name).sort(),
      ['notifications.content', 'notifications.webhook', 'notifications.webhook'],
      'one content task and two deliveries, stored once',
    );

    const different = await notify(s, { ...request, body: 'twice' }, headers);
    assert.equal(different.status, 422);
    assert.equal(different.body.error!.code, 'IDEMPOTENCY_KEY_REUSED');
    const single = await notify(
      s,
      { channel: 'webhook', to: peer.url },
      { 'idempotency-key': 'k2' },
    );
    const repeated = await notify(
      s,
      { channel: 'webhook', to: peer.url },
      { 'idempotency-key': 'k2' },
    );
    assert.equal(
      repeated.body.id,
      single.body.id,
      'one recipient: the id is the task id, both times',
    );
    assert.equal((await finished(s.runtime, single.body.id)).state, 'succeeded');
  });
});
