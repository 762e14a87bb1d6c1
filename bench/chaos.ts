/**
 * `npm run chaos`: the kill test at full size (see RELIABILITY.md). The service on SQLite, then
 * an API process and three workers on PostgreSQL, SIGKILLed at random every 2–5 s while 10,000
 * notify requests arrive; fails unless every accepted notification was delivered.
 *
 *   npm run chaos -- [--backend=sqlite|postgres|both] [--requests=10000] [--concurrency=20]
 *                    [--seed=N] [--every=2000-5000] [--workers=3]
 */
import { formatReport, runKillTest, type Backend } from './chaos/kill-test.js';
import { chooseSeed } from './chaos/random.js';
import { parseArgs } from './lib.js';

const { values } = parseArgs();
const backend = values.get('backend') ?? 'both';
if (!['sqlite', 'postgres', 'both'].includes(backend))
  throw new Error('--backend must be sqlite, postgres or both');
const requests = Number(values.get('requests') ?? 10_000);
const concurrency = Number(values.get('concurrency') ?? 20);
const workers = Number(values.get('workers') ?? 3);
const [min, max] = (values.get('every') ?? '2000-5000').split('-').map(Number) as [number, number];
const seed = chooseSeed(values.get('seed'));
console.log(`# kill test: seed ${seed} (repeat with --seed=${seed})`);

let failed = false;
for (const which of (backend === 'both' ? ['sqlite', 'postgres'] : [backend]) as Backend[]) {
  const report = await runKillTest({
    backend: which,
    requests,
    concurrency,
    seed,
    workers,
    schedule: { every: [min, max] },
    deadline: 30 * 60_000,
    log: (line) => console.log(line),
  });
  console.log(`\n${formatReport(report)}\n`);
  for (const crash of report.crashes) console.log(crash);
  const problems = [
    report.lost > 0 && `${report.lost} accepted notifications lost`,
    report.crashes.length > 0 && `${report.crashes.length} processes exited by themselves`,
    report.badSignatures > 0 && `${report.badSignatures} deliveries with a bad signature`,
    report.idMismatches > 0 && `${report.idMismatches} retried requests answered another id`,
    report.finalExits.some((code) => code !== 0) &&
      `SIGTERM at the end gave exit codes ${report.finalExits.join(', ')}`,
  ].filter(Boolean);
  if (problems.length > 0) {
    failed = true;
    console.log(`FAILED (${which}): ${problems.join('; ')}`);
  }
}
process.exitCode = failed ? 1 : 0;
