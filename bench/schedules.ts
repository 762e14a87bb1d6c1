/**
 * How late schedules fire: the time from a schedule's due time to the `schedule:fire` event of
 * the task it enqueued, in a started runtime on the system clock. Two shapes, 100 fires each, on
 * SQLite (a temporary file) and PostgreSQL (a fresh schema of the local server, dropped after;
 * skipped with the reason when the server cannot be reached):
 *
 * - staggered: 10 schedules every second, set 100 ms apart, until 100 fires;
 * - burst: 100 schedules due in the same second (`* * * * * *`), one round.
 *
 * The target (docs/schedules.md) is a fire within 1 s of its due time.
 *
 *   node --conditions=source --import tsx bench/schedules.ts [--database=sqlite|postgres] [--json=PATH]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createRuntime, SECOND, type Runtime, type Store } from '../packages/offload/src/index.js';
import { postgresStore } from '../packages/offload/src/postgres/index.js';
import { sqliteStore } from '../packages/offload/src/sqlite/index.js';
import {
  BENCH_DATABASE_URL,
  benchLogger,
  dropSchema,
  machineMarkdown,
  median,
  parseArgs,
  percentile,
  postgresVersion,
  publish,
  table,
  tempDatabase,
  uniqueSchema,
  watchdog,
  type Check,
} from './lib.js';

const args = parseArgs();
watchdog(120_000, 'bench/schedules');

const FIRES = 100;
const TARGET_MS = SECOND;

type Database = 'sqlite' | 'postgres';
const only = args.values.get('database');
if (only !== undefined && only !== 'sqlite' && only !== 'postgres') {
  throw new Error(`--database must be sqlite or postgres, got ${JSON.stringify(only)}`);
}
const databases: Database[] = only ? [only] : ['sqlite', 'postgres'];

interface Measured {
  database: Database;
  shape: 'staggered' | 'burst';
  late: number[];
}

/** Collects how late the first FIRES fires are, in ms. */
function lateness(runtime: Runtime): Promise<number[]> {
  const late: number[] = [];
  return new Promise((resolve) => {
    const off = runtime.on('schedule:fire', ({ task }) => {
      late.push(Date.now() - task.runAt.getTime());
      if (late.length === FIRES) {
        off();
        resolve(late);
      }
    });
  });
}

async function staggered(store: Store): Promise<number[]> {
  const runtime = createRuntime({ store, logger: benchLogger() });
  try {
    await runtime.start();
    const fired = lateness(runtime);
    for (let i = 0; i < 10; i++) {
      await runtime.schedules.set(`staggered-${i}`, { every: SECOND }, 'bench.tick', {});
      await sleep(100);
    }
    return await fired;
  } finally {
    await runtime.stop();
  }
}

async function burst(store: Store): Promise<number[]> {
  const runtime = createRuntime({ store, logger: benchLogger() });
  try {
    for (let i = 0; i < FIRES; i++) {
      await runtime.schedules.set(`burst-${i}`, { cron: '* * * * * *' }, 'bench.tick', {});
    }
    const fired = lateness(runtime);
    await runtime.start();
    return await fired;
  } finally {
    await runtime.stop();
  }
}

async function measure(database: Database): Promise<Measured[]> {
  const results: Measured[] = [];
  for (const shape of ['staggered', 'burst'] as const) {
    const run = shape === 'staggered' ? staggered : burst;
    if (database === 'sqlite') {
      const db = tempDatabase('schedules');
      try {
        results.push({ database, shape, late: await run(sqliteStore({ path: db.path })) });
      } finally {
        db.cleanup();
      }
    } else {
      const schema = uniqueSchema('schedules');
      try {
        const store = postgresStore({ connectionString: BENCH_DATABASE_URL, schema });
        results.push({ database, shape, late: await run(store) });
      } finally {
        await dropSchema(schema);
      }
    }
  }
  return results;
}

const measured: Measured[] = [];
const skipped: string[] = [];
for (const database of databases) {
  if (database === 'postgres') {
    const server = await postgresVersion();
    if ('skipped' in server) {
      skipped.push(server.skipped);
      continue;
    }
  }
  measured.push(...(await measure(database)));
}

const ms = (value: number) => `${Math.round(value)} ms`;
const checks: Check[] = measured.map(({ database, shape, late }) => {
  const max = Math.max(...late);
  return {
    target: `${database}, ${shape}: every fire within ${TARGET_MS / SECOND} s of its due time`,
    measured: `slowest ${ms(max)}`,
    met: max <= TARGET_MS,
  };
});
publish(args, {
  name: 'schedules',
  checks,
  markdown: [
    '## Schedules: how late a due schedule fires',
    '',
    machineMarkdown(),
    '',
    table(
      ['store', 'shape', 'fires', 'median', 'p99', 'max'],
      measured.map(({ database, shape, late }) => [
        database,
        shape,
        String(late.length),
        ms(median(late)),
        ms(percentile(late, 99)),
        ms(Math.max(...late)),
      ]),
    ),
    ...skipped.map((reason) => `\nSkipped: ${reason}`),
  ].join('\n'),
});
