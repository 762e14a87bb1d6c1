import { createRequire } from 'node:module';
// Types only: erased from the build. The package is an optional peer, loaded (if installed) when
// a runtime is made, never by importing Offload.
import type * as Otel from '@opentelemetry/api';
import type { ClaimedTask, EnqueueResult, NewTask } from '../store/store.js';

type Api = typeof Otel;

/** `messaging.system` of every span: Offload is the messaging system here. */
const SYSTEM = 'offload';
/** A W3C traceparent of version 00: version, trace id, parent (span) id, flags. */
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const INVALID_TRACE_ID = '0'.repeat(32);
const INVALID_SPAN_ID = '0'.repeat(16);

/** How an attempt ended, as its span's `messaging.offload.outcome` says. */
export type AttemptOutcome =
  'succeeded' | 'retry' | 'failed' | 'canceled' | 'lease-lost' | 'shutdown';

/**
 * Spans of enqueues and attempts through `@opentelemetry/api`, following the messaging semantic
 * conventions (docs/tracing.md). Spans go to the tracer provider registered globally, whenever it
 * is registered; until then, nothing is made and nothing is stored.
 */
export class Tracing {
  private readonly tracer: Otel.Tracer;
  /** What the global provider delegates to while no tracer provider is registered. */
  private readonly none: Otel.TracerProvider;

  private constructor(private readonly api: Api) {
    this.tracer = api.trace.getTracer('offload');
    this.none = new api.ProxyTracerProvider().getDelegate();
  }

  /**
   * Whether a tracer provider is registered. Checked at each enqueue and attempt, so that one
   * registered after the runtime was made counts, and none costs a few property reads.
   */
  private registered(): boolean {
    const provider = this.api.trace.getTracerProvider() as Partial<Otel.ProxyTracerProvider>;
    return provider.getDelegate?.() !== this.none;
  }

  /** Null when `enabled` is false or `@opentelemetry/api` is not installed: then nothing traces. */
  static load(enabled: boolean): Tracing | null {
    if (!enabled) return null;
    let api: Api;
    try {
      api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
    } catch {
      return null;
    }
    return new Tracing(api);
  }

  /**
   * Starts the producer span of an enqueue, in the caller's context (or in `traceparent`'s, when
   * no span is active), and sets the task's `trace` to it. Returns the span, to end once the task
   * is stored; undefined when no span was made (no tracer provider registered).
   */
  send(task: NewTask, traceparent: string | undefined): Otel.Span | undefined {
    if (!this.registered()) return undefined;
    const { api } = this;
    let parent = api.context.active();
    if (traceparent !== undefined && api.trace.getSpan(parent) === undefined) {
      const remote = parseTraceparent(traceparent);
      if (remote) parent = api.trace.setSpanContext(parent, remote);
    }
    const span = this.tracer.startSpan(
      `send ${task.name}`,
      {
        kind: api.SpanKind.PRODUCER,
        attributes: {
          'messaging.system': SYSTEM,
          'messaging.operation.name': 'send',
          'messaging.operation.type': 'send',
          'messaging.destination.name': task.name,
        },
      },
      parent,
    );
    const context = span.spanContext();
    // A recording span has a valid context; a no-op one may carry the parent's, or none.
    if (!span.isRecording() && !api.isSpanContextValid(context)) return undefined;
    task.trace = formatTraceparent(context);
    return span;
  }

  /** Ends an enqueue's span: the task is stored, with `id`. */
  sent(span: Otel.Span, id: string, created: boolean): void {
    span.setAttribute('messaging.message.id', id);
    if (!created) span.setAttribute('messaging.offload.duplicate', true);
    span.end();
  }

  /** Ends an enqueue's span: the task was not stored. */
  notSent(span: Otel.Span, error: unknown): void {
    this.recordError(span, error);
    span.end();
  }

  /**
   * Starts the consumer span of an attempt: a child of the enqueue's span (the task's `trace`),
   * and linked to it, never of whatever context claimed it. Undefined when no span was made.
   */
  process(task: ClaimedTask): Otel.Span | undefined {
    if (!this.registered()) return undefined;
    const { api } = this;
    const remote = task.trace === null ? undefined : parseTraceparent(task.trace);
    const parent =
      remote === undefined ? api.ROOT_CONTEXT : api.trace.setSpanContext(api.ROOT_CONTEXT, remote);
    const span = this.tracer.startSpan(
      `process ${task.name}`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': SYSTEM,
          'messaging.operation.name': 'process',
          'messaging.operation.type': 'process',
          'messaging.destination.name': task.name,
          'messaging.message.id': task.id,
          'messaging.offload.attempt': task.attempts,
        },
        links: remote === undefined ? [] : [{ context: remote }],
      },
      parent,
    );
    return span.isRecording() || api.isSpanContextValid(span.spanContext()) ? span : undefined;
  }

  /** Calls `run` with `span` active: the spans it starts and the calls it makes nest under it. */
  within<T>(span: Otel.Span, run: () => T): T {
    const { api } = this;
    return api.context.with(api.trace.setSpan(api.ROOT_CONTEXT, span), run);
  }

  /** Ends an attempt's span; `error` is what the attempt threw, if it failed. */
  processed(span: Otel.Span, outcome: AttemptOutcome, error?: unknown): void {
    span.setAttribute('messaging.offload.outcome', outcome);
    if (error !== undefined) this.recordError(span, error);
    span.end();
  }

  /**
   * The traceparent to send on with a call: that of the active span when there is one (a span the
   * task started, or its attempt's), else `span`'s. Null when neither is valid.
   */
  traceparent(span: Otel.Span | undefined): string | null {
    const { api } = this;
    const active = api.trace.getSpanContext(api.context.active());
    if (active !== undefined && api.isSpanContextValid(active)) return formatTraceparent(active);
    return span === undefined ? null : formatTraceparent(span.spanContext());
  }

  private recordError(span: Otel.Span, error: unknown): void {
    const { api } = this;
    const exception =
      error instanceof Error ? error : { name: 'ThrownValue', message: describe(error) };
    span.recordException(exception);
    span.setStatus({ code: api.SpanStatusCode.ERROR, message: exception.message });
  }
}

function describe(value: unknown): string {
  try {
    return typeof value === 'string' ? value : String(JSON.stringify(value) ?? value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** `00-<trace id>-<span id>-<flags>`. */
export function formatTraceparent(context: Otel.SpanContext): string {
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}

/** The remote span context of a version-00 traceparent; undefined for anything else. */
export function parseTraceparent(text: string): Otel.SpanContext | undefined {
  // A test without captures, then slices: this runs for every attempt of a traced task.
  if (text.length !== 55 || !TRACEPARENT.test(text)) return undefined;
  const traceId = text.slice(3, 35);
  const spanId = text.slice(36, 52);
  if (traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID) return undefined;
  return { traceId, spanId, traceFlags: parseInt(text.slice(53), 16), isRemote: true };
}

/**
 * The producer spans of enqueues whose tasks are not stored yet: each ends once its task is
 * stored, or is not. Costs one check per write while no span is open.
 */
export class EnqueueSpans {
  private readonly open = new Map<NewTask, Otel.Span>();

  constructor(private readonly tracing: Tracing) {}

  /** Starts the span of `task`'s enqueue (see Tracing.send); false when none was made. */
  start(task: NewTask, traceparent: string | undefined): boolean {
    const span = this.tracing.send(task, traceparent);
    if (span !== undefined) this.open.set(task, span);
    return span !== undefined;
  }

  /** Ends the spans of `tasks`, stored as `results` say. */
  stored(tasks: readonly NewTask[], results: readonly EnqueueResult[]): void {
    if (this.open.size === 0) return;
    tasks.forEach((task, i) => {
      const span = this.take(task);
      if (span !== undefined) this.tracing.sent(span, results[i]!.task.id, results[i]!.created);
    });
  }

  /** Ends the spans of `tasks`, which were not stored. */
  failed(tasks: readonly NewTask[], error: unknown): void {
    if (this.open.size === 0) return;
    for (const task of tasks) {
      const span = this.take(task);
      if (span !== undefined) this.tracing.notSent(span, error);
    }
  }

  private take(task: NewTask): Otel.Span | undefined {
    const span = this.open.get(task);
    this.open.delete(task);
    return span;
  }
}
