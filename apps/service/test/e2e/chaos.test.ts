/**
 * The kill test at a small size (`npm run chaos` is the full one): real service processes
 * SIGKILLed while notify requests arrive; every accepted webhook notification reaches the ledger.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatReport, runKillTest, type KillReport } from '../../../../bench/chaos/kill-test.js';
import { seededRandom } from '../../../../bench/chaos/random.js';

const SEED = 20_260_101;
const REQUESTS = 400;

function check(report: KillReport): void {
  console.log(formatReport(report));
  assert.deepEqual(report.crashes, [], 'no process exited by itself');
  assert.equal(report.accepted + report.refused + report.failed, REQUESTS);
  assert.equal(report.accepted, REQUESTS, 'every request got its 200 in the end');
  assert.equal(report.lost, 0, 'every accepted notification was delivered');
  assert.equal(report.idMismatches, 0, 'a repeated request answered the same task');
  assert.equal(report.badSignatures, 0);
  assert.equal(report.failedTasks, 0, 'no delivery used up its attempts');
  assert.ok(report.kills >= 3, `${report.kills} kills`);
  assert.ok(report.deliveries >= report.accepted);
  assert.deepEqual(
    report.finalExits,
    report.finalExits.map(() => 0),
    'SIGTERM after the kills still exits 0',
  );
}

/** Two kills at random points of the request stream, then the last one after it. */
function points(): number[] {
  const random = seededRandom(SEED);
  return [random.between(60, 180), random.between(220, 340)];
}

describe('kill test (small)', { timeout: 90_000 }, () => {
  it(`SQLite: ${REQUESTS} requests, the service SIGKILLed 3 times: none lost`, async () => {
    check(
      await runKillTest({
        backend: 'sqlite',
        requests: REQUESTS,
        concurrency: 20,
        seed: SEED,
        schedule: { afterAccepted: points() },
        deadline: 80_000,
        drainDeadline: 30_000,
      }),
    );
  });

  it(`PostgreSQL: ${REQUESTS} requests, 3 workers, a worker SIGKILLed 3 times: none lost`, async () => {
    check(
      await runKillTest({
        backend: 'postgres',
        requests: REQUESTS,
        concurrency: 20,
        seed: SEED,
        workers: 3,
        schedule: { afterAccepted: points() },
        deadline: 80_000,
        drainDeadline: 30_000,
      }),
    );
  });
});
