/**
 * Enqueue throughput: one caller awaiting each `enqueue` in turn, and 50 concurrent callers
 * (`Promise.all` of 50 enqueues, repeated), which the runtime groups per event-loop turn.
 * The runtime is not started, so only enqueue is measured. Median of 5 runs, each on a fresh
 * store after a warm-up.
 *
 *   node --conditions=source --import tsx bench/enqueue.ts [--quick] [--store=sqlite|memory] [--mode=sequential|concurrent] [--json=PATH]
 */
import { createRuntime, defineTask } from '../packages/offload/src/index.js';
import {
  benchLogger,
  freshStore,
  int,
  median,
  parseArgs,
  publish,
  rate,
  table,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
watchdog(args.quick ? 60_000 : 240_000, 'bench/enqueue');

const N = args.quick ? 5_000 : 20_000;
const WARM_UP = args.quick ? 1_000 : 2_000;
const RUNS = args.quick ? 3 : 5;
const CALLERS = 50;
const TARGETS = { sqlite: 40_000, memory: 300_000 } as const;

const noop = defineTask<{ i: number }>({ name: 'bench.noop', run: () => undefined });

type Mode = 'sequential' | 'concurrent';
const modeArg = args.values.get('mode');
if (modeArg !== undefined && modeArg !== 'sequential' && modeArg !== 'concurrent') {
  throw new Error(`--mode must be sequential or concurrent, got ${JSON.stringify(modeArg)}`);
}
/** `--mode=` picks one, e.g. to profile it alone. */
const modes: Mode[] = modeArg ? [modeArg] : ['sequential', 'concurrent'];

async function once(kind: 'sqlite' | 'memory', mode: Mode): Promise<number> {
  const { store, cleanup } = freshStore(kind);
  const runtime = createRuntime({ store, tasks: [noop], logger: benchLogger() });
  try {
    const batch = async (from: number, count: number) => {
      if (mode === 'sequential') {
        for (let i = from; i < from + count; i++) await runtime.enqueue(noop, { i });
      } else {
        for (let i = from; i < from + count; i += CALLERS) {
          await Promise.all(
            Array.from({ length: CALLERS }, (_, k) => runtime.enqueue(noop, { i: i + k })),
          );
        }
      }
    };
    await batch(0, WARM_UP);
    const started = performance.now();
    await batch(WARM_UP, N);
    return rate(N, performance.now() - started);
  } finally {
    await runtime.stop();
    cleanup();
  }
}

const rows: string[][] = [];
const checks: Check[] = [];
for (const kind of args.stores) {
  for (const mode of modes) {
    const rates: number[] = [];
    for (let run = 0; run < RUNS; run++) rates.push(await once(kind, mode));
    const med = median(rates);
    const label =
      mode === 'sequential' ? 'one at a time (`await` each)' : `${CALLERS} concurrent callers`;
    rows.push([kind, label, int(med), rates.map(int).join(', ')]);
    if (mode === 'sequential') {
      checks.push({
        target: `enqueue one at a time, ${kind}: ≥ ${int(TARGETS[kind])}/s`,
        measured: `${int(med)}/s`,
        met: med >= TARGETS[kind],
      });
    }
  }
}

publish(args, {
  name: 'enqueue',
  markdown: [
    `### Enqueue (N = ${int(N)} after ${int(WARM_UP)} warm-up, median of ${RUNS} runs; runtime not started)`,
    '',
    table(['store', 'callers', 'tasks/s (median)', 'runs'], rows),
    '',
  ].join('\n'),
  checks,
});
