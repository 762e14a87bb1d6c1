import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { defineTask, PermanentError } from '../../src/index.js';
import { memoryRuntimes } from '../helpers.js';
import { parentOf, registerTestTracing, traceparentOf, type TestTracing } from '../tracing.js';

const runtimeWith = memoryRuntimes();
const REMOTE = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('tracing without a tracer provider', () => {
  it('stores no trace, not even one to continue, and leaves ctx.traceparent null', async () => {
    let seen: string | null | undefined;
    const work = defineTask({
      name: 'work',
      run(_payload, ctx) {
        seen = ctx.traceparent;
      },
    });
    const runtime = runtimeWith({ tasks: [work] });
    const task = await runtime.enqueue(work, {}, { traceparent: REMOTE });
    assert.equal(task.trace, null);
    await runtime.drain();
    assert.equal((await runtime.get(task.id))!.trace, null);
    assert.equal(seen, null);
  });
});

describe('tracing with a tracer provider', () => {
  let tracing: TestTracing;
  before(() => {
    tracing = registerTestTracing();
  });
  after(() => tracing.close());

  const tracer = () => trace.getTracer('test');
  const spansNamed = (name: string) => tracing.spans().filter((span) => span.name === name);

  it('enqueues in a producer span under the active span, and runs each attempt in a consumer span of that trace', async () => {
    tracing.exporter.reset();
    let inner: string | null = null;
    let seen: string | null = null;
    const work = defineTask({
      name: 'work',
      async run(_payload, ctx) {
        await tracer().startActiveSpan('inside', async (span) => {
          inner = traceparentOf(span as never);
          seen = ctx.traceparent;
          span.end();
        });
      },
    });
    const runtime = runtimeWith({ tasks: [work] });
    const task = await tracer().startActiveSpan('request', async (span) => {
      try {
        return await runtime.enqueue(work, { n: 1 });
      } finally {
        span.end();
      }
    });
    await runtime.drain();

    const [request] = spansNamed('request');
    const [send] = spansNamed('send work');
    const [process] = spansNamed('process work');
    const [inside] = spansNamed('inside');
    assert.ok(request && send && process && inside);
    const traceId = request.spanContext().traceId;
    for (const span of [send, process, inside]) assert.equal(span.spanContext().traceId, traceId);

    assert.equal(send.kind, SpanKind.PRODUCER);
    assert.equal(parentOf(send), request.spanContext().spanId);
    assert.deepEqual(send.attributes, {
      'messaging.system': 'offload',
      'messaging.operation.name': 'send',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'work',
      'messaging.message.id': task.id,
    });
    assert.equal(task.trace, traceparentOf(send));
    assert.equal((await runtime.get(task.id))!.trace, traceparentOf(send));

    assert.equal(process.kind, SpanKind.CONSUMER);
    assert.equal(parentOf(process), send.spanContext().spanId);
    assert.deepEqual(
      process.links.map((link) => link.context.spanId),
      [send.spanContext().spanId],
    );
    assert.deepEqual(process.attributes, {
      'messaging.system': 'offload',
      'messaging.operation.name': 'process',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'work',
      'messaging.message.id': task.id,
      'messaging.offload.attempt': 1,
      'messaging.offload.outcome': 'succeeded',
    });
    assert.equal(process.status.code, SpanStatusCode.UNSET);
    // The run's own spans nest under the attempt's, and ctx.traceparent names the active one.
    assert.equal(parentOf(inside), process.spanContext().spanId);
    assert.equal(seen, inner);
  });

  it('records each failed attempt on a span of its own, and retries as separate attempt spans', async () => {
    tracing.exporter.reset();
    let runs = 0;
    const flaky = defineTask({
      name: 'flaky',
      maxAttempts: 3,
      backoff: { base: 0, max: 0, jitter: 0 },
      run() {
        runs += 1;
        if (runs === 1) throw new Error('first attempt fails');
        if (runs === 2) throw new PermanentError('second attempt gives up');
      },
    });
    const runtime = runtimeWith({ tasks: [flaky] });
    const task = await runtime.enqueue(flaky, {});
    await runtime.drain();
    assert.equal((await runtime.get(task.id))!.state, 'failed');

    const [send] = spansNamed('send flaky');
    const attempts = spansNamed('process flaky');
    assert.ok(send);
    assert.deepEqual(
      attempts.map((span) => [
        span.attributes['messaging.offload.attempt'],
        span.attributes['messaging.offload.outcome'],
        span.status.code,
        span.status.message,
        span.events.map((event) => [event.name, event.attributes?.['exception.message']]),
      ]),
      [
        [
          1,
          'retry',
          SpanStatusCode.ERROR,
          'first attempt fails',
          [['exception', 'first attempt fails']],
        ],
        [
          2,
          'failed',
          SpanStatusCode.ERROR,
          'second attempt gives up',
          [['exception', 'second attempt gives up']],
        ],
      ],
    );
    for (const span of attempts) {
      assert.equal(span.spanContext().traceId, send.spanContext().traceId);
      assert.equal(parentOf(span), send.spanContext().spanId);
    }
    assert.notEqual(attempts[0]!.spanContext().spanId, attempts[1]!.spanContext().spanId);
  });

  it('continues the traceparent option when no span is active, and ignores it under an active span', async () => {
    tracing.exporter.reset();
    const work = defineTask({ name: 'work', run() {} });
    const runtime = runtimeWith({ tasks: [work] });
    const remote = await runtime.enqueue(work, {}, { traceparent: REMOTE });
    const [fromRemote] = spansNamed('send work');
    assert.equal(fromRemote!.spanContext().traceId, REMOTE.split('-')[1]);
    assert.equal(parentOf(fromRemote!), REMOTE.split('-')[2]);
    assert.equal(remote.trace, traceparentOf(fromRemote!));

    const local = await tracer().startActiveSpan('local', async (span) => {
      try {
        return await runtime.enqueue(work, {}, { traceparent: REMOTE });
      } finally {
        span.end();
      }
    });
    const [, underLocal] = spansNamed('send work');
    const [localSpan] = spansNamed('local');
    assert.equal(parentOf(underLocal!), localSpan!.spanContext().spanId);
    assert.equal(local.trace, traceparentOf(underLocal!));

    // A malformed one starts a trace of its own.
    const fresh = await runtime.enqueue(work, {}, { traceparent: '00-nothing-like-it' });
    const [, , own] = spansNamed('send work');
    assert.equal(parentOf(own!), undefined);
    assert.equal(fresh.trace, traceparentOf(own!));
  });

  it('enqueueMany makes a producer span per task; a store that fails ends them with the error', async () => {
    tracing.exporter.reset();
    const work = defineTask({ name: 'work', run() {} });
    const runtime = runtimeWith({ tasks: [work] });
    const tasks = await runtime.enqueueMany([
      { task: work, payload: { n: 1 } },
      { task: work, payload: { n: 2 } },
    ]);
    const sends = spansNamed('send work');
    assert.deepEqual(
      sends.map((span) => span.attributes['messaging.message.id']),
      tasks.map((task) => task.id),
    );
    assert.deepEqual(
      tasks.map((task) => task.trace),
      sends.map(traceparentOf),
    );

    tracing.exporter.reset();
    const broken = runtimeWith({ tasks: [work] });
    const store = (broken as unknown as { store: { enqueue(): Promise<never> } }).store;
    store.enqueue = () => Promise.reject(new Error('disk full'));
    await assert.rejects(broken.enqueue(work, {}), /disk full/);
    const [failed] = spansNamed('send work');
    assert.equal(failed!.status.code, SpanStatusCode.ERROR);
    assert.equal(failed!.status.message, 'disk full');
  });

  it('traces nothing and stores no trace with tracing: false', async () => {
    tracing.exporter.reset();
    const work = defineTask({ name: 'work', run() {} });
    const runtime = runtimeWith({ tasks: [work], tracing: false });
    const task = await tracer().startActiveSpan('request', async (span) => {
      try {
        return await runtime.enqueue(work, {});
      } finally {
        span.end();
      }
    });
    await runtime.drain();
    assert.equal(task.trace, null);
    assert.deepEqual(
      tracing.spans().map((span) => span.name),
      ['request'],
    );
  });
});
