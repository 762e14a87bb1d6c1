import { describe } from 'node:test';
import { describeCancel, describeRetry } from './cancel-retry.js';
import { describeClaim } from './claim.js';
import { describeEnqueue } from './enqueue.js';
import { describeFeeds } from './feeds.js';
import { describeGet, describeList } from './get-list.js';
import { describeGroups } from './groups.js';
import type { MakeStore } from './harness.js';
import { describeLifecycle } from './lifecycle.js';
import { describePause } from './pause.js';
import { describePayloads } from './payloads.js';
import { describeProgress } from './progress.js';
import { describePrune } from './prune.js';
import { describeRecords } from './records.js';
import { describeRenew } from './renew.js';
import { describeRescue } from './rescue.js';
import { describeSchedules } from './schedules.js';
import { describeSettle } from './settle.js';
import { describeStats } from './stats.js';

export type { MakeStore };

/**
 * The one suite every store passes, one `describe` per operation of the store contract
 * (`src/store/store.ts`). Each test gets a fresh store from `makeStore`.
 */
export function storeConformance(name: string, makeStore: MakeStore): void {
  describe(`store conformance: ${name}`, () => {
    describeLifecycle(makeStore);
    describeEnqueue(makeStore);
    describeClaim(makeStore);
    describeSettle(makeStore);
    describeRenew(makeStore);
    describeProgress(makeStore);
    describeRescue(makeStore);
    describeGet(makeStore);
    describeList(makeStore);
    describeCancel(makeStore);
    describeRetry(makeStore);
    describePrune(makeStore);
    describeStats(makeStore);
    describePayloads(makeStore);
    describeSchedules(makeStore);
    describeGroups(makeStore);
    describePause(makeStore);
    describeRecords(makeStore);
    describeFeeds(makeStore);
  });
}
