/**
 * One trace from the HTTP request that notifies, through the stored task and its attempts, to the
 * server that receives the webhook: over real sockets on loopback, with OpenTelemetry's in-memory
 * exporter. No HTTP instrumentation is installed: the service continues the request's
 * `traceparent` header.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import {
  startHttpPeer,
  type HttpPeer,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import { finished } from '../../../../packages/offload/test/helpers.js';
import {
  parentOf,
  registerTestTracing,
  traceparentOf,
  type TestTracing,
} from '../../../../packages/offload/test/tracing.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const TASK = 'notifications.webhook';

let tracing: TestTracing;
before(() => {
  tracing = registerTestTracing();
});
after(() => tracing.close());

let services: TestService[] = [];
let peers: HttpPeer[] = [];
afterEach(async () => {
  await Promise.all([...services, ...peers].map((x) => x.close()));
  services = [];
  peers = [];
});

async function setup(): Promise<{ url: string; s: TestService; peer: HttpPeer }> {
  const peer = await startHttpPeer();
  peers.push(peer);
  const settings = readChannelSettings((name) =>
    name === 'WEBHOOK_SECRET' ? `whsec_${Buffer.alloc(32, 7).toString('base64')}` : undefined,
  );
  const s = await testService({
    channels: {
      ...DEFAULT_CHANNEL_SETTINGS,
      webhook: settings.webhook,
      allowPrivateHosts: ['127.0.0.1'],
      deliveryTimeout: 2000,
      deliveryAttempts: 2,
      deliveryBackoff: 5,
    },
  });
  services.push(s);
  return { url: await s.listen(), s, peer };
}

/** POSTs a webhook notification to `peer` inside a client span; returns the task id and span. */
async function notify(url: string, peer: HttpPeer) {
  return trace.getTracer('client').startActiveSpan('client request', async (span) => {
    try {
      const response = await fetch(`${url}/api/notifications/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: traceparentOf(span as never) },
        body: JSON.stringify({ channel: 'webhook', to: `${peer.url}/hooks`, body: 'deployed' }),
      });
      assert.equal(response.status, 200);
      const { id } = (await response.json()) as { id: string };
      return { id, client: span.spanContext() };
    } finally {
      span.end();
    }
  });
}

const spansNamed = (name: string) => tracing.spans().filter((span) => span.name === name);

describe('traces of a notification', { timeout: 20_000 }, () => {
  it('runs as one trace from the request, through the attempt, to the receiving server', async () => {
    tracing.exporter.reset();
    const { url, s, peer } = await setup();
    const { id, client } = await notify(url, peer);
    const received = await peer.nextRequest();
    assert.equal((await finished(s.runtime, id)).state, 'succeeded');

    const [send] = spansNamed(`send ${TASK}`);
    const [attempt] = spansNamed(`process ${TASK}`);
    assert.ok(send && attempt);
    assert.equal(send.spanContext().traceId, client.traceId);
    assert.equal(parentOf(send), client.spanId);
    assert.equal(send.kind, SpanKind.PRODUCER);
    assert.equal(send.attributes['messaging.message.id'], id);
    assert.equal(attempt.spanContext().traceId, client.traceId);
    assert.equal(parentOf(attempt), send.spanContext().spanId);
    assert.equal(attempt.attributes['messaging.message.id'], id);
    assert.equal((await s.runtime.get(id))!.trace, traceparentOf(send));
    // The receiver's parent is the attempt: its own spans join the same trace.
    assert.equal(received.headers.traceparent, traceparentOf(attempt));
  });

  it('sends each retry with the traceparent of its own attempt, and records the failure', async () => {
    tracing.exporter.reset();
    const { url, s, peer } = await setup();
    let calls = 0;
    peer.handle((_request, response) => {
      calls += 1;
      response.writeHead(calls === 1 ? 503 : 204).end();
    });
    const { id, client } = await notify(url, peer);
    const first = await peer.nextRequest();
    const second = await peer.nextRequest();
    assert.equal((await finished(s.runtime, id)).state, 'succeeded');

    const attempts = spansNamed(`process ${TASK}`);
    assert.deepEqual(
      attempts.map((span) => [
        span.attributes['messaging.offload.attempt'],
        span.attributes['messaging.offload.outcome'],
        span.status.code,
      ]),
      [
        [1, 'retry', SpanStatusCode.ERROR],
        [2, 'succeeded', SpanStatusCode.UNSET],
      ],
    );
    assert.ok(attempts[0]!.events.some((event) => event.name === 'exception'));
    for (const span of attempts) assert.equal(span.spanContext().traceId, client.traceId);
    assert.deepEqual(
      [first.headers.traceparent, second.headers.traceparent],
      attempts.map(traceparentOf),
    );
  });
});
