/**
 * The ceiling under the SQLite numbers: raw better-sqlite3, no runtime, the store's own schema
 * (src/store/sqlite/migrations.ts) and insert statement, WAL + synchronous NORMAL. One row per
 * IMMEDIATE transaction (what one-at-a-time enqueue costs at least), with the full schema and with
 * no secondary index but the key's. Median of 5 runs of 20,000.
 *
 *   node --conditions=source --import tsx bench/sqlite-baseline.ts [--quick] [--json=PATH]
 */
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../packages/offload/src/sqlite/migrations.js';
import { prepareStatements } from '../packages/offload/src/sqlite/statements.js';
import { int, median, parseArgs, publish, rate, table, tempDatabase, watchdog } from './lib.js';

const args = parseArgs();
watchdog(120_000, 'bench/sqlite-baseline');
const N = args.quick ? 5_000 : 20_000;
const RUNS = args.quick ? 1 : 5;
const variants: [string, string[]][] = [
  ['full schema (4 indexes)', []],
  [
    'table + key index only',
    ['offload_tasks_claim', 'offload_tasks_running', 'offload_tasks_done'],
  ],
];

const rows: string[][] = [];
for (const [label, drop] of variants) {
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const file = tempDatabase('baseline');
    const db = new Database(file.path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      for (const migration of MIGRATIONS) db.exec(migration);
      // The store's own insert, prepared before the drops (its other statements need the indexes).
      const { insert, nextId } = prepareStatements(db);
      for (const index of drop) db.exec(`DROP INDEX ${index}`);
      const one = db.transaction((i: number) =>
        insert.run(
          nextId.get()!,
          'bench.noop',
          `{"i":${i}}`,
          0,
          5,
          null,
          null,
          Date.now(),
          Date.now(),
        ),
      );
      for (let i = 0; i < 2_000; i++) one.immediate(i);
      const started = performance.now();
      for (let i = 0; i < N; i++) one.immediate(i);
      rates.push(rate(N, performance.now() - started));
    } finally {
      db.close();
      file.cleanup();
    }
  }
  rows.push([label, int(median(rates)), rates.map(int).join(', ')]);
}

publish(args, {
  name: 'sqlite-baseline',
  checks: [],
  markdown: [
    `### Raw SQLite ceiling: one insert per IMMEDIATE transaction (WAL, synchronous NORMAL; N = ${int(N)}, median of ${RUNS})`,
    '',
    table(['schema', 'inserts/s (median)', 'runs'], rows),
    '',
  ].join('\n'),
});
