import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SECOND, TASK_STATES, type Logger, type Runtime, type Store } from 'offload';
import type { DeliveryCall } from '@offload/notifications';
import type { InboxStreams } from './inbox-streams.js';

type StoreStats = Awaited<ReturnType<Store['stats']>>;

export interface MetricsOptions {
  runtime: Runtime;
  store: Store;
  /**
   * How long the store's counts are reused, in ms: counting reads an index entry per stored task.
   * Default 5 s.
   */
  statsTtl?: number;
  /** Also export Node's process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
  /** Where a failure to read the store's counts is reported. */
  logger?: Logger;
}

/**
 * The service's Prometheus metrics in a registry of their own. Attempt durations, retries and
 * failures come from runtime events as they happen; tasks by state and the queue lag come from
 * the store's counts, read when scraped and cached for `statsTtl`.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly statsTtl: number;
  private cached: { at: number; stats: Promise<StoreStats | null>; read: boolean } | null = null;
  private readonly calls: Counter<'channel' | 'provider' | 'outcome'>;
  private readonly callDurations: Histogram<'channel' | 'outcome'>;

  constructor(private readonly options: MetricsOptions) {
    this.statsTtl = options.statsTtl ?? 5 * SECOND;
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    const durations = new Histogram({
      name: 'offload_task_attempt_duration_seconds',
      help: 'How long task attempts ran, by task name and outcome (success or error)',
      labelNames: ['name', 'outcome'],
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    const retries = counter('offload_task_retries_total', 'Failed attempts that will be retried');
    const failures = counter('offload_task_failures_total', 'Tasks that failed for good');
    const rescues = counter(
      'offload_task_rescues_total',
      'Tasks handed back after their process stopped',
    );
    const runtimeErrors = new Counter({
      name: 'offload_runtime_errors_total',
      help: 'Errors of the store or of listeners that the runtime survived',
      registers,
    });
    this.calls = new Counter({
      name: 'offload_notification_calls_total',
      help: 'Outgoing delivery calls (a webhook POST, an SMTP exchange, a push request) by channel, provider and outcome (delivered, rejected, gone, refused, retry, timeout, aborted)',
      labelNames: ['channel', 'provider', 'outcome'],
      registers,
    });
    this.callDurations = new Histogram({
      name: 'offload_notification_call_duration_seconds',
      help: 'How long outgoing delivery calls took, by channel and outcome',
      labelNames: ['channel', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const { runtime } = options;
    this.unsubscribe.push(
      runtime.on('task:success', ({ task, duration }) =>
        durations.observe({ name: task.name, outcome: 'success' }, duration / SECOND),
      ),
      runtime.on('task:error', ({ task, duration }) =>
        durations.observe({ name: task.name, outcome: 'error' }, duration / SECOND),
      ),
      runtime.on('task:retry', ({ task }) => retries.inc({ name: task.name })),
      runtime.on('task:failed', ({ task }) => failures.inc({ name: task.name })),
      runtime.on('task:rescue', ({ task }) => rescues.inc({ name: task.name })),
      runtime.on('runtime:error', () => runtimeErrors.inc()),
    );

    const readStats = () => this.stats();
    new Gauge({
      name: 'offload_tasks',
      help: 'Tasks in the store by task name and state',
      labelNames: ['name', 'state'],
      registers,
      async collect() {
        const stats = await readStats();
        if (!stats) return;
        this.reset();
        for (const name of new Set(stats.counts.map((c) => c.name))) {
          for (const state of TASK_STATES) this.set({ name, state }, 0);
        }
        for (const { name, state, count } of stats.counts) this.set({ name, state }, count);
      },
    });
    new Gauge({
      name: 'offload_queue_lag_seconds',
      help: 'How long the oldest due queued task has waited to start (0 when none waits)',
      registers,
      async collect() {
        const stats = await readStats();
        if (stats)
          this.set(
            stats.oldestDue === null ? 0 : Math.max(0, Date.now() - stats.oldestDue) / SECOND,
          );
      },
    });
    new Gauge({
      name: 'offload_store_up',
      help: '1 when the last read of the store counts succeeded, else 0',
      registers,
      async collect() {
        this.set((await readStats()) ? 1 : 0);
      },
    });

    function counter(name: string, help: string): Counter<'name'> {
      return new Counter({ name, help: `${help}, by task name`, labelNames: ['name'], registers });
    }
  }

  /** Exports the open inbox streams, the refused ones, and the messages they sent. */
  trackInboxStreams(streams: InboxStreams): void {
    const registers = [this.registry];
    new Gauge({
      name: 'offload_inbox_streams',
      help: 'Inbox streams (server-sent events) open on this process',
      registers,
      collect() {
        this.set(streams.stats.open);
      },
    });
    new Counter({
      name: 'offload_inbox_streams_refused_total',
      help: 'Inbox streams refused, by reason: recipient (INBOX_MAX_STREAMS_PER_RECIPIENT, a 429) or process (INBOX_MAX_STREAMS, a 503)',
      labelNames: ['reason'],
      registers,
      collect() {
        const { refused } = streams.stats;
        this.reset();
        this.inc({ reason: 'recipient' }, refused.recipient);
        this.inc({ reason: 'process' }, refused.process);
      },
    });
    new Counter({
      name: 'offload_inbox_stream_messages_total',
      help: 'Inbox messages sent on streams of this process',
      registers,
      collect() {
        this.reset();
        this.inc(streams.stats.sent);
      },
    });
    new Counter({
      name: 'offload_inbox_streams_dropped_total',
      help: 'Inbox streams closed because their client did not read what was sent (it resumes when it reconnects)',
      registers,
      collect() {
        this.reset();
        this.inc(streams.stats.dropped);
      },
    });
  }

  /** Counts one outgoing delivery call. */
  countCall({ channel, provider, outcome, duration }: DeliveryCall): void {
    this.calls.inc({ channel, provider, outcome });
    this.callDurations.observe({ channel, outcome }, duration / SECOND);
  }

  /** The metrics in Prometheus text format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stops listening to the runtime. */
  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /**
   * The store's counts, shared by the gauges of one scrape (whatever `statsTtl`: they ask while
   * the read is under way) and reused for `statsTtl`.
   */
  private stats(): Promise<StoreStats | null> {
    const now = Date.now();
    if (!this.cached || (this.cached.read && now - this.cached.at >= this.statsTtl)) {
      const cached = { at: now, stats: Promise.resolve<StoreStats | null>(null), read: false };
      cached.stats = this.options.store.stats(now).then(
        (stats) => {
          cached.read = true;
          return stats;
        },
        (error: unknown) => {
          cached.read = true;
          this.options.logger?.warn(
            { err: error },
            'metrics: could not read the task counts from the store',
          );
          return null;
        },
      );
      this.cached = cached;
    }
    return this.cached.stats;
  }
}
