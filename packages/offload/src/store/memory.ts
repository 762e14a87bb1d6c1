import { decodePayload } from '../json.js';
import { isFinished, type ListFilter, type Task, type TaskPage, type TaskState } from '../types.js';
import { Heap } from './heap.js';
import {
  byPriority,
  byRunAt,
  copyGroup,
  isCurrent,
  listPage,
  oldestDue,
  pushError,
  StateCounts,
  toTask,
  type Entry,
  type Row,
} from './memory-rows.js';
import { parseRowId } from './ids.js';
import { MemorySchedules } from './memory-schedules.js';
import { MemoryLimits } from './memory-limits.js';
import { MemoryRecords } from './records.js';
import {
  MemoryFeeds,
  type AppendedFeedEntry,
  type FeedEntry,
  type FeedQuery,
  type FeedRange,
  type NewFeedEntry,
} from './feeds.js';
import {
  interruptedError,
  transactionsUnsupported,
  type Change,
  type ClaimedTask,
  type ClaimRequest,
  type EnqueueResult,
  type FireRequest,
  type FireResult,
  type Lease,
  type NewRecord,
  type NewSchedule,
  type NewTask,
  type ProgressUpdate,
  type PausedName,
  type RecordQuery,
  type Rescue,
  type Settlement,
  type SqlClient,
  type Store,
  type StoreStats,
  type StoredRecord,
  type StoredSchedule,
} from './store.js';

/**
 * A store in the process's memory: a real store with the same semantics as the durable ones (it
 * passes the same conformance suite), for tests and for work that may be lost on exit.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly rows = new Map<number, Row>();
  private readonly keys = new Map<string, Row>();
  /** Rows in `running`, so that rescue does not walk every task. */
  private readonly runningRows = new Set<Row>();
  /** Queued tasks whose `runAt` has come, in claim order. */
  private readonly due = new Heap<Entry>(byPriority);
  /** Queued tasks waiting for their `runAt`. */
  private readonly waiting = new Heap<Entry>(byRunAt);
  /** Tasks per state and name, kept as tasks change: stats reads no row. */
  private readonly counts = new StateCounts();
  /** Groups and paused names. */
  private readonly limits = new MemoryLimits();
  private nextId = 1;
  private closed = false;
  private readonly schedules = new MemorySchedules((tasks) => this.insert(tasks));
  private readonly records = new MemoryRecords();
  private readonly feeds = new MemoryFeeds();

  async open(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async registerWorker(): Promise<void> {}

  async unregisterWorker(): Promise<void> {}

  async enqueue(tasks: readonly NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]> {
    this.assertOpen();
    if (transaction !== undefined) throw transactionsUnsupported(this.kind);
    return this.insert(tasks);
  }

  private insert(tasks: readonly NewTask[]): EnqueueResult[] {
    return tasks.map((input) => {
      const existing = input.key === null ? undefined : this.keys.get(input.key);
      if (existing) return { task: toTask(existing), created: false };
      const row: Row = {
        id: this.nextId++,
        ...input,
        group: copyGroup(input.group),
        state: 'queued',
        attempts: 0,
        startedAt: null,
        finishedAt: null,
        errors: [],
        result: null,
        progress: null,
        owner: null,
        lease: 0,
        leaseExpiresAt: null,
        version: 0,
      };
      this.rows.set(row.id, row);
      this.counts.add(row.name, row.state, 1);
      if (row.key !== null) this.keys.set(row.key, row);
      this.schedule(row);
      return { task: toTask(row), created: true };
    });
  }

  async claim({ owner, names, limit, now, leaseExpiresAt }: ClaimRequest): Promise<ClaimedTask[]> {
    this.assertOpen();
    this.promote(now);
    const wanted = new Set(names);
    const skipped: Entry[] = [];
    const claimed: ClaimedTask[] = [];
    while (claimed.length < limit) {
      const entry = this.due.pop();
      if (!entry) break;
      if (!isCurrent(entry)) continue;
      // A clock that stepped back since an earlier claim moved this entry to `due`: not yet due.
      if (
        !wanted.has(entry.row.name) ||
        entry.row.runAt > now ||
        !this.limits.mayStart(entry.row.name, entry.row.group, now)
      ) {
        skipped.push(entry);
        continue;
      }
      const row = entry.row;
      this.setState(row, 'running');
      this.runningRows.add(row);
      row.attempts += 1;
      row.startedAt = now;
      row.owner = owner;
      row.lease += 1;
      row.leaseExpiresAt = leaseExpiresAt;
      const { payload, error } = decodePayload(row.payload);
      // As the durable stores: the claim does not read progress back (see ClaimedTask).
      claimed.push(
        Object.assign(toTask(row, payload), {
          progress: null,
          lease: row.lease,
          payloadError: error,
        }),
      );
    }
    for (const entry of skipped) this.due.push(entry);
    return claimed;
  }

  async settle(settlements: readonly Settlement[]): Promise<boolean[]> {
    this.assertOpen();
    return settlements.map((s) => {
      const row = this.rows.get(parseRowId(s.id) ?? -1);
      if (!row || row.state !== 'running' || row.lease !== s.lease) return false;
      if (s.error) pushError(row, s.error);
      if (s.refund) row.attempts -= 1;
      if (s.state === 'succeeded') row.result = s.result ?? null;
      if (s.progress !== undefined) row.progress = s.progress;
      row.owner = null;
      row.leaseExpiresAt = null;
      this.setState(row, s.state);
      this.runningRows.delete(row);
      if (s.state === 'queued') {
        row.runAt = s.runAt ?? s.at;
        this.schedule(row);
      } else {
        row.finishedAt = s.at;
      }
      return true;
    });
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<string[]> {
    this.assertOpen();
    const lost: string[] = [];
    for (const { id, lease } of leases) {
      const row = this.rows.get(parseRowId(id) ?? -1);
      if (row && row.state === 'running' && row.lease === lease) row.leaseExpiresAt = expiresAt;
      else lost.push(id);
    }
    return lost;
  }

  async progress(updates: readonly ProgressUpdate[]): Promise<string[]> {
    this.assertOpen();
    const lost: string[] = [];
    for (const { id, lease, progress } of updates) {
      const row = this.rows.get(parseRowId(id) ?? -1);
      if (row && row.state === 'running' && row.lease === lease) row.progress = progress;
      else lost.push(id);
    }
    return lost;
  }

  async rescue(now: number): Promise<Rescue[]> {
    this.assertOpen();
    const rescued: Rescue[] = [];
    for (const row of this.runningRows) {
      if (row.state !== 'running' || row.leaseExpiresAt === null || row.leaseExpiresAt >= now)
        continue;
      const owner = row.owner;
      this.runningRows.delete(row);
      pushError(row, interruptedError(row.attempts, now, owner));
      row.owner = null;
      row.leaseExpiresAt = null;
      if (row.attempts >= row.maxAttempts) {
        this.setState(row, 'failed');
        row.finishedAt = now;
      } else {
        this.setState(row, 'queued');
        row.runAt = now;
        this.schedule(row);
      }
      rescued.push({ task: toTask(row), owner });
    }
    return rescued;
  }

  async get(id: string): Promise<Task | null> {
    this.assertOpen();
    const row = this.rows.get(parseRowId(id) ?? -1);
    return row ? toTask(row) : null;
  }

  async list(filter: ListFilter & { limit: number }): Promise<TaskPage> {
    this.assertOpen();
    return listPage(this.rows, filter);
  }

  async cancel(id: string, now: number): Promise<Change | null> {
    this.assertOpen();
    const row = this.rows.get(parseRowId(id) ?? -1);
    if (!row) return null;
    if (isFinished(row.state)) return { task: toTask(row), changed: false };
    this.setState(row, 'canceled');
    this.runningRows.delete(row);
    row.finishedAt = now;
    row.owner = null;
    row.leaseExpiresAt = null;
    return { task: toTask(row), changed: true };
  }

  async retry(id: string, now: number): Promise<Change | null> {
    this.assertOpen();
    const row = this.rows.get(parseRowId(id) ?? -1);
    if (!row) return null;
    if (row.state !== 'failed' && row.state !== 'canceled')
      return { task: toTask(row), changed: false };
    this.setState(row, 'queued');
    row.runAt = now;
    row.finishedAt = null;
    row.maxAttempts = Math.max(row.maxAttempts, row.attempts + 1);
    this.schedule(row);
    return { task: toTask(row), changed: true };
  }

  async prune(before: number, limit: number): Promise<number> {
    this.assertOpen();
    let pruned = 0;
    for (const row of this.rows.values()) {
      if (pruned === limit) break;
      if (!isFinished(row.state) || row.finishedAt === null || row.finishedAt >= before) continue;
      this.rows.delete(row.id);
      this.counts.add(row.name, row.state, -1);
      if (row.key !== null) this.keys.delete(row.key);
      pruned += 1;
    }
    return pruned;
  }

  /** Reads the counts kept as tasks change, and the due queued tasks only. */
  async stats(now: number): Promise<StoreStats> {
    this.assertOpen();
    this.promote(now);
    return { counts: this.counts.list(), oldestDue: oldestDue(this.due, now) };
  }

  async setSchedule(schedule: NewSchedule, now: number): Promise<StoredSchedule> {
    this.assertOpen();
    return this.schedules.set(schedule, now);
  }

  async getSchedule(name: string): Promise<StoredSchedule | null> {
    this.assertOpen();
    return this.schedules.get(name);
  }

  async listSchedules(): Promise<StoredSchedule[]> {
    this.assertOpen();
    return this.schedules.list();
  }

  async pauseSchedule(name: string, now: number): Promise<StoredSchedule | null> {
    this.assertOpen();
    return this.schedules.pause(name, now);
  }

  async resumeSchedule(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): Promise<StoredSchedule | null> {
    this.assertOpen();
    return this.schedules.resume(name, now, next);
  }

  async removeSchedule(name: string): Promise<boolean> {
    this.assertOpen();
    return this.schedules.remove(name);
  }

  async fireSchedules(request: FireRequest): Promise<FireResult> {
    this.assertOpen();
    return this.schedules.fire(request);
  }

  async pause(name: string, now: number): Promise<boolean> {
    this.assertOpen();
    return this.limits.pause(name, now);
  }

  async resume(name: string): Promise<boolean> {
    this.assertOpen();
    return this.limits.resume(name);
  }

  async paused(): Promise<PausedName[]> {
    this.assertOpen();
    return this.limits.paused();
  }

  async throttle(key: string, until: number): Promise<void> {
    this.assertOpen();
    this.limits.throttle(key, until);
  }

  async putRecord(record: NewRecord, now: number): Promise<StoredRecord> {
    this.assertOpen();
    return this.records.put(record, now);
  }

  async getRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    this.assertOpen();
    return this.records.get(collection, ids);
  }

  async listRecords(collection: string, query: RecordQuery): Promise<StoredRecord[]> {
    this.assertOpen();
    return this.records.list(collection, query);
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    this.assertOpen();
    return this.records.delete(collection, id);
  }

  async appendFeedEntry(entry: NewFeedEntry, now: number): Promise<AppendedFeedEntry> {
    this.assertOpen();
    return this.feeds.append(entry, now);
  }

  async listFeedEntries(feed: string, query: FeedQuery): Promise<FeedEntry[]> {
    this.assertOpen();
    return this.feeds.list(feed, query);
  }

  async markFeedEntriesRead(feed: string, range: FeedRange, now: number): Promise<number> {
    this.assertOpen();
    return this.feeds.markRead(feed, range, now);
  }

  async countUnreadFeedEntries(feed: string): Promise<number> {
    this.assertOpen();
    return this.feeds.countUnread(feed);
  }

  /** Moves the queued tasks whose `runAt` has come from `waiting` to `due`. */
  private promote(now: number): void {
    for (let top = this.waiting.peek(); top && top.row.runAt <= now; top = this.waiting.peek()) {
      this.waiting.pop();
      if (isCurrent(top)) this.due.push(top);
    }
  }

  private setState(row: Row, state: TaskState): void {
    this.counts.add(row.name, row.state, -1);
    this.counts.add(row.name, state, 1);
    this.limits.moved(row.group, row.state, state);
    row.state = state;
  }

  private schedule(row: Row): void {
    row.version += 1;
    this.waiting.push({ row, version: row.version });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the memory store is closed');
  }
}

export function memoryStore(): MemoryStore {
  return new MemoryStore();
}
