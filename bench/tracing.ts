/**
 * What tracing costs: N no-op tasks enqueued (enqueueMany in chunks), then drained at concurrency
 * 100, in three modes that take turns, round after round, so that drift of the machine falls on
 * each alike; medians of the rounds.
 *
 *   off       `tracing: false`: no span, no trace stored (as without `@opentelemetry/api`).
 *   no SDK    tracing on, no tracer provider registered: nothing made, nothing stored.
 *   sampled   a tracer provider whose sampler records nothing (AlwaysOffSampler), as a sample
 *             rate of 0 would: spans are not recorded, but each task stores its trace (flags 00)
 *             and the claim reads it back. The cost of the stored trace, mostly.
 *   traced    a tracer provider (sdk-trace-base) with a BatchSpanProcessor and an exporter that
 *             drops what it is given: every span made, every task's trace stored and read back.
 *
 * The target: traced drains at no less than 95% of off.
 *
 *   node --conditions=source --import tsx bench/tracing.ts [--quick] [--store=sqlite|memory] [--json=PATH]
 */
import { trace } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { createRuntime, defineTask, type TaskRequest } from '../packages/offload/src/index.js';
import {
  benchLogger,
  counter,
  freshStore,
  int,
  median,
  parseArgs,
  publish,
  rate,
  settle,
  table,
  targetsMarkdown,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
watchdog(args.quick ? 180_000 : 600_000, 'bench/tracing');

const N = args.quick ? 10_000 : 30_000;
const CHUNK = 1_000;
const CONCURRENCY = 100;
const ROUNDS = args.quick ? 3 : 7;
const DRAIN_TIMEOUT = 120_000;
/** Traced drains at no less than this share of off. */
const TARGET = 0.95;

type Mode = 'off' | 'no SDK' | 'sampled' | 'traced';
const MODES: readonly Mode[] = ['off', 'no SDK', 'sampled', 'traced'];

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

/** Takes every span and drops it. */
class DroppingExporter implements SpanExporter {
  exported = 0;
  export(spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    this.exported += spans.length;
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

interface Rates {
  enqueue: number;
  drain: number;
}

async function run(kind: 'sqlite' | 'memory', mode: Mode): Promise<Rates> {
  const exporter = new DroppingExporter();
  const provider =
    mode === 'traced' || mode === 'sampled'
      ? new BasicTracerProvider({
          spanProcessors: [new BatchSpanProcessor(exporter)],
          ...(mode === 'sampled' ? { sampler: new AlwaysOffSampler() } : {}),
        })
      : null;
  if (provider) trace.setGlobalTracerProvider(provider);
  const { store, cleanup } = freshStore(kind);
  const runtime = createRuntime({
    store,
    tasks: [noop],
    concurrency: CONCURRENCY,
    logger: benchLogger(),
    tracing: mode !== 'off',
  });
  const successes = counter(N, DRAIN_TIMEOUT, `${kind} ${mode} drain`);
  runtime.on('task:success', successes.tick);
  try {
    const t0 = performance.now();
    for (let from = 0; from < N; from += CHUNK) {
      const chunk: TaskRequest[] = [];
      for (let i = from; i < Math.min(N, from + CHUNK); i++)
        chunk.push({ task: noop, payload: { i } });
      await runtime.enqueueMany(chunk);
    }
    const t1 = performance.now();
    await runtime.start();
    await successes.done;
    const t2 = performance.now();
    if (mode === 'traced') {
      await provider!.forceFlush();
      // Every enqueue and every attempt made a span: else this measured nothing.
      if (exporter.exported !== 2 * N)
        throw new Error(`expected ${2 * N} spans exported, got ${exporter.exported}`);
    }
    return { enqueue: rate(N, t1 - t0), drain: rate(N, t2 - t1) };
  } finally {
    await runtime.stop();
    cleanup();
    if (provider) {
      await provider.shutdown();
      trace.disable();
    }
  }
}

const sections: string[] = [];
const checks: Check[] = [];
for (const kind of args.stores) {
  const results = new Map<Mode, Rates[]>(MODES.map((mode) => [mode, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with the next mode: none is always first after a pause.
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(round + k) % MODES.length]!;
      results.get(mode)!.push(await run(kind, mode));
      await settle(200);
    }
  }
  const drains = (mode: Mode) => median(results.get(mode)!.map((r) => r.drain));
  const enqueues = (mode: Mode) => median(results.get(mode)!.map((r) => r.enqueue));
  const off = drains('off');
  sections.push(
    `### ${kind}\n\n` +
      table(
        ['mode', 'enqueue (tasks/s)', 'drain (tasks/s)', 'drain vs off'],
        MODES.map((mode) => [
          mode,
          int(enqueues(mode)),
          int(drains(mode)),
          `${((drains(mode) / off) * 100).toFixed(1)}%`,
        ]),
      ),
  );
  checks.push({
    target: `${kind}: traced drains ≥ ${TARGET * 100}% of off (≥ ${int(off * TARGET)} tasks/s)`,
    measured: `${int(drains('traced'))} tasks/s`,
    met: drains('traced') >= off * TARGET,
  });
}

publish(args, {
  name: 'tracing',
  markdown:
    `## Tracing\n\n${N} no-op tasks, concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating rounds.\n\n` +
    sections.join('\n\n') +
    `\n\n${targetsMarkdown(checks)}`,
  checks,
});
