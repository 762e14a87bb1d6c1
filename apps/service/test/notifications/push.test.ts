/** The Web Push channel, end to end: the service sends to a push service on 127.0.0.1. */
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import {
  encryptPushMessage,
  generateVapidKeys,
  MAX_PUSH_PLAINTEXT,
} from '../../../../packages/notifications/src/channels/web-push-crypto.js';
import { DEFAULT_CHANNEL_SETTINGS } from '../../../../packages/notifications/src/index.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import {
  startHttpPeer,
  type HttpPeer,
  type PeerHandler,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import {
  decryptPushBody,
  newSubscription,
  verifyVapid,
  type TestSubscription,
} from '../fixtures/push-service.js';
import { finished } from '../../../../packages/offload/test/helpers.js';

/** RFC 8291, section 5 and Appendix A. */
const RFC = {
  plaintext: 'When I grow up, I want to be a watermelon',
  uaPublic:
    'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  auth: 'BTBZMqHH6r4Tts7J_aSIgg',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  body: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
};

describe('Web Push cryptography against RFC 8291', () => {
  it('the test decryptor opens the RFC example', () => {
    const plaintext = decryptPushBody(Buffer.from(RFC.body, 'base64url'), {
      privateKey: Buffer.from(RFC.uaPrivate, 'base64url'),
      auth: RFC.auth,
    });
    assert.equal(plaintext.toString(), RFC.plaintext);
  });

  it('the encryption gives the RFC example byte for byte, with its salt and key', () => {
    const ephemeral = createECDH('prime256v1');
    ephemeral.setPrivateKey(Buffer.from(RFC.asPrivate, 'base64url'));
    const body = encryptPushMessage(
      Buffer.from(RFC.plaintext),
      { p256dh: Buffer.from(RFC.uaPublic, 'base64url'), auth: Buffer.from(RFC.auth, 'base64url') },
      { salt: Buffer.from(RFC.salt, 'base64url'), ephemeral },
    );
    assert.equal(body.toString('base64url'), RFC.body);
  });
});

const VAPID = generateVapidKeys();
let services: TestService[] = [];
let peers: HttpPeer[] = [];
afterEach(async () => {
  await Promise.all([...services, ...peers].map((x) => x.close()));
  services = [];
  peers = [];
});

async function setup(
  handler: PeerHandler = (_request, response) => response.writeHead(201).end(),
  allowPrivateHosts = ['127.0.0.1'],
  resolve?: Parameters<typeof testService>[2],
): Promise<{ s: TestService; peer: HttpPeer }> {
  const peer = await startHttpPeer(handler);
  peers.push(peer);
  const s = await testService(
    {
      channels: {
        ...DEFAULT_CHANNEL_SETTINGS,
        push: { vapid: VAPID, subject: 'mailto:ops@offload.test', ttl: 3600 },
        allowPrivateHosts,
        deliveryTimeout: 300,
        deliveryAttempts: 2,
        deliveryBackoff: 5,
      },
    },
    undefined,
    resolve,
  );
  services.push(s);
  return { s, peer };
}

function subscriptionJson(endpoint: string, subscription: TestSubscription) {
  return {
    endpoint,
    expirationTime: null,
    keys: { p256dh: subscription.p256dh, auth: subscription.auth },
  };
}

async function push(s: TestService, to: unknown, extra: object = {}) {
  const response = await s.app.inject({
    method: 'POST',
    url: '/api/notifications/notify',
    payload: { channel: 'push', to, ...extra },
  });
  return {
    status: response.statusCode,
    body: response.json<{ id: string; error?: { message: string } }>(),
  };
}

describe('the push channel', { timeout: 20_000 }, () => {
  it('sends a message only the subscription can read, signed with VAPID, with a TTL', async () => {
    const { s, peer } = await setup();
    const browser = newSubscription();
    const endpoint = `${peer.url}/push/abc123`;
    const { status, body } = await push(s, subscriptionJson(endpoint, browser), {
      subject: 'Build failed',
      body: 'main is red',
      data: { url: '/builds/7' },
    });
    assert.equal(status, 200);
    const received = await peer.nextRequest();
    const task = await finished(s.runtime, body.id);
    assert.equal(task.state, 'succeeded');
    assert.equal(received.url, '/push/abc123');
    assert.equal(received.headers['content-encoding'], 'aes128gcm');
    assert.equal(received.headers.ttl, '3600');
    const message = JSON.parse(decryptPushBody(received.body, browser).toString()) as object;
    assert.deepEqual(message, {
      notification: body.id, // a lone delivery is its own notification
      title: 'Build failed',
      body: 'main is red',
      data: { url: '/builds/7' },
    });
    const vapid = verifyVapid(received.headers.authorization);
    assert.equal(vapid.publicKey, VAPID.publicKey);
    assert.equal(vapid.claims.aud, peer.url);
    assert.equal(vapid.claims.sub, 'mailto:ops@offload.test');
    assert.ok(
      vapid.claims.exp * 1000 > Date.now() && vapid.claims.exp * 1000 <= Date.now() + 86_400_000,
    );
    assert.deepEqual(task.result, { provider: 'web-push', response: '201 Created' });
    assert.ok(!JSON.stringify([s.logs.lines, task]).includes(VAPID.privateKey));
  });

  for (const status of [404, 410]) {
    it(`marks the subscription gone on ${status}, and sends to it no more`, async () => {
      const { s, peer } = await setup((_request, response) => response.writeHead(status).end());
      const to = subscriptionJson(`${peer.url}/push/old`, newSubscription());
      const task = await finished(s.runtime, (await push(s, to)).body.id);
      assert.equal(task.state, 'failed');
      assert.equal(task.attempts, 1);
      assert.equal(task.errors[0]!.name, 'RecipientGoneError');
      const again = await finished(s.runtime, (await push(s, to)).body.id);
      assert.match(again.errors[0]!.message, /^not sent: .*the recipient is gone/);
      assert.equal(peer.requests.length, 1);
    });
  }

  it('retries 429 after Retry-After and a 5xx, and fails at once on a 400', async () => {
    const answers = [429, 502, 201, 400];
    const { s, peer } = await setup((_request, response) => {
      const status = answers.shift()!;
      response.writeHead(status, status === 429 ? { 'retry-after': '0' } : {}).end();
    });
    const to = subscriptionJson(`${peer.url}/push/x`, newSubscription());
    const retried = await finished(s.runtime, (await push(s, to)).body.id);
    assert.equal(retried.state, 'succeeded');
    assert.deepEqual(
      retried.errors.map((e) => e.name),
      ['RetryLaterError', 'Error'],
    );
    const rejected = await finished(s.runtime, (await push(s, to)).body.id);
    assert.equal(rejected.state, 'failed');
    assert.equal(rejected.errors[0]!.name, 'DeliveryRejectedError');
    assert.equal(peer.requests.length, 4);
  });

  it('times out a push service that does not answer', async () => {
    const { s, peer } = await setup(() => {
      // never answers
    });
    const to = subscriptionJson(`${peer.url}/push/slow`, newSubscription());
    const task = await finished(s.runtime, (await push(s, to)).body.id);
    assert.equal(task.state, 'failed');
    assert.deepEqual(
      task.errors.map((e) => e.name),
      ['DeliveryTimeoutError', 'DeliveryTimeoutError'],
    );
  });

  it('applies the SSRF guard to endpoints: loopback refused, no connection made', async () => {
    const resolve = { resolve: async () => [{ address: '127.0.0.1', family: 4 as const }] };
    const { s, peer } = await setup(undefined, [], resolve);
    const browser = newSubscription();
    const literal = await push(s, subscriptionJson(`https://127.0.0.1:${peer.port}/p`, browser));
    assert.equal(literal.status, 400);
    assert.match(
      literal.body.error!.message,
      /^to\.endpoint is refused: 127\.0\.0\.1 is not a public address/,
    );
    const plain = await push(
      s,
      subscriptionJson(`http://push.example.test:${peer.port}/p`, browser),
    );
    assert.equal(plain.status, 400);
    assert.match(plain.body.error!.message, /^to\.endpoint must be an https:\/\/ URL/);
    const named = await push(
      s,
      subscriptionJson(`https://push.example.test:${peer.port}/p`, browser),
    );
    assert.equal(named.status, 200);
    const task = await finished(s.runtime, named.body.id);
    assert.equal(task.errors[0]!.name, 'RefusedTargetError');
    assert.equal(peer.connections(), 0);
  });

  it('refuses malformed subscriptions and oversized messages when the request arrives', async () => {
    const { s, peer } = await setup();
    const good = subscriptionJson(`${peer.url}/p`, newSubscription());
    const bad: [unknown, RegExp][] = [
      ['https://push.example.com/x', /^to must be a push subscription/],
      [{ ...good, keys: { ...good.keys, p256dh: 'AAAA' } }, /^to\.keys\.p256dh must be/],
      [{ ...good, keys: { ...good.keys, auth: 'c2hvcnQ' } }, /^to\.keys\.auth must be .*16 bytes/],
      [{ ...good, keys: undefined }, /^to\.keys must be/],
      [{ ...good, extra: 1 }, /^to\.extra is not a field/],
      [{ ...good, endpoint: 'not a url' }, /^to\.endpoint must be the push service URL/],
      [[good, { ...good, endpoint: 'ftp://x/' }], /^to\[1\]\.endpoint must be an https/],
    ];
    for (const [to, message] of bad) {
      const { status, body } = await push(s, to);
      assert.equal(status, 400, JSON.stringify(to));
      assert.match(body.error!.message, message);
    }
    const big = await push(s, good, { body: 'x'.repeat(MAX_PUSH_PLAINTEXT) });
    assert.equal(big.status, 400);
    assert.match(big.body.error!.message, /^a push message holds at most 3993 bytes/);
    assert.equal(peer.connections(), 0);
  });
});
