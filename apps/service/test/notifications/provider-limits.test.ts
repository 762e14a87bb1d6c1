/**
 * Limits per provider: each webhook host is a group key with a concurrency limit, and a 429 from
 * it throttles that host only. Real local HTTP peers (loopback only): one on 127.0.0.1, another on
 * [::1], which the service keys as another host.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import {
  startHttpPeer,
  type HttpPeer,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import { finished, waitUntil } from '../../../../packages/offload/test/helpers.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

let services: TestService[] = [];
let peers: HttpPeer[] = [];
afterEach(async () => {
  await Promise.all([...services, ...peers].map((x) => x.close()));
  services = [];
  peers = [];
});

async function service(webhookConcurrency = 10, providerThrottle = 30_000): Promise<TestService> {
  const settings = readChannelSettings((name) => (name === 'WEBHOOK_SECRET' ? SECRET : undefined));
  const s = await testService({
    channels: {
      ...DEFAULT_CHANNEL_SETTINGS,
      webhook: settings.webhook,
      allowPrivateHosts: ['127.0.0.1', '::1'],
      deliveryTimeout: 5000,
      deliveryAttempts: 2,
      deliveryBackoff: 5,
      providerConcurrency: {
        ...DEFAULT_CHANNEL_SETTINGS.providerConcurrency,
        webhook: webhookConcurrency,
      },
      providerThrottle,
    },
  });
  services.push(s);
  return s;
}

async function peer(
  handler?: Parameters<typeof startHttpPeer>[0],
  host: '127.0.0.1' | '::1' = '127.0.0.1',
): Promise<HttpPeer> {
  const started = await startHttpPeer(handler, host);
  peers.push(started);
  return started;
}

async function notify(s: TestService, to: string): Promise<string> {
  const response = await s.app.inject({
    method: 'POST',
    url: '/api/notifications/notify',
    payload: { channel: 'webhook', to, body: 'hello' },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ id: string }>().id;
}

describe('provider limits', { timeout: 30_000 }, () => {
  it("throttles a webhook host that answers 429, for every delivery to it, while another host's go on", async () => {
    const s = await service();
    let answered429 = false;
    const limited = await peer((_request, response) => {
      if (answered429) return void response.writeHead(204).end();
      answered429 = true;
      response.writeHead(429, { 'retry-after': '3600' }).end('slow down');
    });
    const other = await peer(undefined, '::1');
    assert.match(other.url, /^http:\/\/\[::1\]:\d+$/);

    const first = await notify(s, limited.url);
    await waitUntil('the 429 to be taken as a throttle', async () => {
      const task = await s.runtime.get(first);
      return task?.errors.at(-1)?.name === 'RetryLaterError';
    });
    const throttled = await s.runtime.get(first);
    assert.equal(throttled?.state, 'queued');
    assert.equal(throttled?.attempts, 0, 'the 429 used no attempt');
    assert.equal(throttled?.group?.key, `webhook:127.0.0.1:${limited.port}`);
    assert.match(throttled?.errors[0]?.message ?? '', /no delivery goes to .* for 3600 s/);

    const held = [await notify(s, limited.url), await notify(s, limited.url)];
    const delivered = [await notify(s, other.url), await notify(s, other.url)];
    for (const id of delivered) assert.equal((await finished(s.runtime, id)).state, 'succeeded');
    assert.equal(other.requests.length, 2);
    assert.equal((await s.runtime.get(delivered[0]!))?.group?.key, `webhook:[::1]:${other.port}`);
    // The runtime has claimed the deliveries to the other host since; those to the throttled one
    // stay queued, untried.
    await s.runtime.drain();
    for (const id of held) {
      const task = await s.runtime.get(id);
      assert.equal(task?.state, 'queued');
      assert.equal(task?.attempts, 0);
    }
    assert.equal(limited.requests.length, 1, 'nothing more was sent to the throttled host');
  });

  it('throttles a host that answers 429 without Retry-After for PROVIDER_THROTTLE, using no attempt', async () => {
    const s = await service(10, 50);
    let calls = 0;
    const limited = await peer((_request, response) => {
      calls += 1;
      response.writeHead(calls === 1 ? 429 : 204).end();
    });
    const task = await finished(s.runtime, await notify(s, limited.url));
    assert.equal(task.state, 'succeeded');
    assert.equal(task.attempts, 1, 'the 429 gave its attempt back');
    assert.equal(task.errors[0]?.name, 'RetryLaterError');
    assert.match(
      task.errors[0]?.message ?? '',
      /for 1 s, the default for a 429 without Retry-After/,
    );
  });

  it('sends no more requests at once to one host than WEBHOOK_HOST_CONCURRENCY', async () => {
    const s = await service(2);
    const waiting: ServerResponse[] = [];
    let most = 0;
    const slow = await peer((_request, response) => {
      waiting.push(response);
      most = Math.max(most, waiting.length);
    });
    const fast = await peer(undefined, '::1');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await notify(s, slow.url));
    const other = await notify(s, fast.url);
    await waitUntil('two requests to wait at the slow host', async () => waiting.length === 2);
    assert.equal((await finished(s.runtime, other)).state, 'succeeded', 'the other host went on');
    assert.equal(waiting.length, 2);
    // Answer one at a time: each answer lets one more request in.
    while (slow.requests.length < 5 || waiting.length > 0) {
      await waitUntil('a request to answer', async () => waiting.length > 0);
      waiting.shift()!.writeHead(204).end();
    }
    for (const id of ids) assert.equal((await finished(s.runtime, id)).state, 'succeeded');
    assert.equal(most, 2);
  });
});
