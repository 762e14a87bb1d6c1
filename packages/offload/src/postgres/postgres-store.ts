import type pg from 'pg';
import type { ListFilter, Logger, Task, TaskPage } from '../types.js';
import {
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
} from '../store/store.js';
import { AbsentOwners } from './absent-owners.js';
import { enqueueTasks, type EnqueueStatement } from './enqueue.js';
import { postgresStoreError } from './errors.js';
import { listQuery } from './list-query.js';
import { Liveness } from './liveness.js';
import { handBack, inMaintenance, type MaintenanceContext } from './maintenance.js';
import { openPool } from './open-pool.js';
import { postgresSettings, type PostgresStoreOptions } from './options.js';
import { byClaimOrder, toClaimedTask, toTask, type TaskRow } from './rows.js';
import { endAttempts, rounds } from './settlements.js';
import { PostgresRecords } from './records.js';
import { feedChannel, PostgresFeeds } from './feeds.js';
import type {
  AppendedFeedEntry,
  FeedEntry,
  FeedQuery,
  FeedRange,
  NewFeedEntry,
} from '../store/feeds.js';
import { PostgresSchedules } from './schedules.js';
import { buildSql, type Sql } from './sql.js';
import { checkId, isTaskId } from './task-ids.js';

export type { PostgresStoreOptions } from './options.js';

/**
 * The store for several processes on several machines: one PostgreSQL database, shared by API
 * processes and runners. Claims take batches with `FOR UPDATE SKIP LOCKED`; runners learn of new
 * tasks through LISTEN/NOTIFY (a trigger notifies at commit, whoever inserts); each registered
 * worker holds a session advisory lock, so the tasks of a process that died are rescued a few
 * seconds after its session ended (see `AbsentOwners`) instead of when their lease expires;
 * rescue and pruning run on one process at a time.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly schema: string;
  private readonly sql: Sql;
  /** Advisory locks of this schema use this first key: migrations, maintenance, liveness. */
  private readonly lockClass: number;
  private readonly channel: string;
  private readonly poolConfig: pg.PoolConfig;
  private readonly logger: Logger;
  private readonly mustExist: boolean;
  private pool: pg.Pool | null = null;
  private liveness: Liveness | null = null;
  private opening: Promise<void> | null = null;
  /** Workers registered through this store: the only owners `claim` accepts. */
  private readonly owners = new Set<string>();
  private readonly absent = new AbsentOwners();
  /** The group key the last claim took from: the next one visits the keys after it first. */
  private lastKey = '';
  /** A rescue of this store is under way (another one at once would find the lock taken). */
  private rescuing = false;
  private readonly maintenanceContext: MaintenanceContext;
  private readonly schedules: PostgresSchedules;
  private readonly records: PostgresRecords;
  private readonly feeds: PostgresFeeds;

  constructor(options: PostgresStoreOptions) {
    const settings = postgresSettings(options);
    this.schema = settings.schema;
    this.sql = buildSql(settings.schema);
    this.lockClass = settings.lockClass;
    this.channel = settings.channel;
    this.poolConfig = settings.poolConfig;
    this.logger = settings.logger;
    this.mustExist = settings.mustExist;
    this.maintenanceContext = { sql: this.sql, lockClass: this.lockClass, logger: this.logger };
    this.schedules = new PostgresSchedules(this.schema, this.sql, this.logger);
    this.records = new PostgresRecords(this.schema);
    this.feeds = new PostgresFeeds(this.schema);
  }

  open(): Promise<void> {
    if (this.pool) return Promise.resolve();
    return (this.opening ??= this.connect().finally(() => (this.opening = null)));
  }

  private async connect(): Promise<void> {
    const { poolConfig, schema, lockClass, mustExist, logger } = this;
    this.pool = await openPool(poolConfig, schema, lockClass, mustExist, logger);
    this.liveness = new Liveness(
      {
        connectionString: poolConfig.connectionString,
        connectionTimeoutMillis: poolConfig.connectionTimeoutMillis,
        application_name: 'offload-liveness',
      },
      this.channel,
      lockClass,
      logger,
      feedChannel(schema),
    );
  }

  async close(): Promise<void> {
    await this.opening?.catch(() => undefined);
    const { pool, liveness } = this;
    this.pool = null;
    this.liveness = null;
    this.owners.clear();
    this.absent.forget();
    const results = await Promise.allSettled([liveness?.close(), pool?.end()]);
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    if (errors.length > 0) throw new AggregateError(errors, 'closing the PostgreSQL store failed');
  }

  async ping(): Promise<void> {
    await this.use((pool) => pool.query('SELECT 1'));
  }

  /**
   * Takes the advisory lock of `owner` on a dedicated connection: other processes see the owner
   * alive while the session lasts. Refuses an owner that another live process holds.
   */
  async registerWorker(owner: string): Promise<void> {
    await this.use(() => this.liveness!.register(owner));
    this.owners.add(owner);
  }

  async unregisterWorker(owner: string): Promise<void> {
    await this.use(() => {
      this.owners.delete(owner);
      return this.liveness!.unregister(owner);
    });
  }

  /** Calls `listener` when any process added tasks (LISTEN/NOTIFY). */
  async watch(listener: () => void): Promise<void> {
    await this.use(() => this.liveness!.watch(listener));
  }

  async enqueue(tasks: readonly NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]> {
    return this.use(async (pool) => {
      if (tasks.length === 0) return [];
      // On the caller's connection, in their transaction, as plain statements (nothing of ours
      // is left prepared on it); else on the pool, prepared.
      const run: EnqueueStatement = transaction
        ? (name, values) => transaction.query(this.sql[name], values)
        : (name, values) => pool.query(this.prepared(name, values));
      return enqueueTasks(tasks, run);
    });
  }

  async claim(request: ClaimRequest): Promise<ClaimedTask[]> {
    const { owner, names, limit, now, leaseExpiresAt } = request;
    return this.use(async (pool) => {
      if (!this.owners.has(owner)) {
        throw new Error(
          `PostgresStore.claim: the worker "${owner}" is not registered in this store; call registerWorker("${owner}") first, or other processes would take its tasks as abandoned`,
        );
      }
      if (names.length === 0 || limit <= 0) return [];
      const { rows } = await pool.query<TaskRow>(
        this.prepared('claim', [now, names, limit, owner, leaseExpiresAt, this.lastKey]),
      );
      // The tasks with a group come first, in the order their keys were visited.
      const lastKey = rows.findLast((row) => row.group_key !== null)?.group_key;
      if (lastKey != null) this.lastKey = lastKey;
      rows.sort(byClaimOrder);
      return rows.map(toClaimedTask);
    });
  }

  /**
   * One statement for the batch. A task settled twice in one batch (a bug upstream, but the
   * answer must still be exact) takes one statement per occurrence, in order.
   */
  async settle(settlements: readonly Settlement[]): Promise<boolean[]> {
    return this.use(async (pool) => {
      const applied: boolean[] = [];
      for (const round of rounds(settlements)) {
        const batch = round.map((i) => settlements[i]!);
        const { rows } = await pool.query<{ id: string }>(
          this.prepared('settle', endAttempts(batch)),
        );
        const settled = new Set(rows.map((row) => row.id));
        for (const i of round) applied[i] = settled.has(settlements[i]!.id);
      }
      return applied;
    });
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<string[]> {
    if (leases.length === 0) return [];
    const { rows } = await this.use((pool) =>
      pool.query<{ id: string }>(
        this.prepared('renew', [
          leases.map((l) => checkId(l.id)),
          leases.map((l) => l.lease),
          expiresAt,
        ]),
      ),
    );
    const renewed = new Set(rows.map((row) => row.id));
    return leases.filter((l) => !renewed.has(l.id)).map((l) => l.id);
  }

  /** One statement; a task given twice takes the last (UPDATE … FROM would take either). */
  async progress(updates: readonly ProgressUpdate[]): Promise<string[]> {
    if (updates.length === 0) return [];
    const latest = [...new Map(updates.map((u) => [u.id, u])).values()];
    const { rows } = await this.use((pool) =>
      pool.query<{ id: string }>(
        this.prepared('progress', [
          latest.map((u) => checkId(u.id)),
          latest.map((u) => u.lease),
          latest.map((u) => u.progress),
        ]),
      ),
    );
    const written = new Set(rows.map((row) => row.id));
    return latest.filter((u) => !written.has(u.id)).map((u) => u.id);
  }

  /**
   * Runs on one process at a time: a process that finds another one at it returns nothing.
   * Hands back tasks whose lease expired, and those of owners whose liveness lock has been free
   * for `OWNER_GRACE` (see `AbsentOwners`: a free lock may be an owner reconnecting). The owners
   * registered here are never taken for absent: this process is alive, and their tasks come back
   * only when their lease expires. A call while another one of this store is under way returns
   * nothing.
   */
  async rescue(now: number): Promise<Rescue[]> {
    return this.use(async (pool) => {
      const liveness = this.liveness!;
      if (this.rescuing) return [];
      this.rescuing = true;
      try {
        const session = await liveness.session();
        const rescued = await inMaintenance<Rescue[] | null>(
          pool,
          this.maintenanceContext,
          null,
          async (client) => {
            const free = await client.query<{ owner: string }>(this.sql.unlockedOwners, [
              this.lockClass,
            ]);
            const others = free.rows.map((row) => row.owner).filter((o) => !this.owners.has(o));
            // The look counts only if this process's own session lasted through it.
            let gone: string[] = [];
            if (liveness.currentSession === session) gone = this.absent.observe(others, session);
            else this.absent.forget();
            return handBack(client, this.maintenanceContext, now, gone);
          },
        );
        if (rescued === null) this.absent.forget();
        return rescued ?? [];
      } catch (error) {
        this.absent.forget();
        throw error;
      } finally {
        this.rescuing = false;
      }
    });
  }

  async get(id: string): Promise<Task | null> {
    return this.use(async (pool) => {
      if (!isTaskId(id)) return null;
      const { rows } = await pool.query<TaskRow>(this.prepared('byId', [id]));
      return rows[0] ? toTask(rows[0]) : null;
    });
  }

  async list(filter: ListFilter & { limit: number }): Promise<TaskPage> {
    return this.use(async (pool) => {
      const [query, parameters] = listQuery(this.sql, filter);
      const { rows } = await pool.query<TaskRow>(query, parameters);
      const more = rows.length > filter.limit;
      if (more) rows.length = filter.limit;
      const tasks = rows.map((row) => toTask(row));
      return { tasks, nextCursor: more ? tasks[tasks.length - 1]!.id : null };
    });
  }

  async cancel(id: string, now: number): Promise<Change | null> {
    return this.change(this.sql.cancel, id, now);
  }

  async retry(id: string, now: number): Promise<Change | null> {
    return this.change(this.sql.retry, id, now);
  }

  /** Runs on one process at a time: a process that finds another one at it deletes nothing. */
  async prune(before: number, limit: number): Promise<number> {
    return this.use((pool) =>
      inMaintenance(pool, this.maintenanceContext, 0, async (client) => {
        const { rowCount } = await client.query(this.sql.prune, [before, limit]);
        return rowCount ?? 0;
      }),
    );
  }

  async stats(now: number): Promise<StoreStats> {
    type Count = { name: string; state: Task['state']; count: number };
    const [counted, oldest] = await this.use((pool) =>
      Promise.all([
        // Several statements in one text: node-postgres answers a result for each.
        pool.query(this.sql.countsFromIndexes) as unknown as Promise<pg.QueryResult<Count>[]>,
        pool.query<{ at: string | null }>(this.sql.oldestDue, [now]),
      ]),
    );
    const at = oldest.rows[0]?.at ?? null;
    return { counts: counted.at(-1)!.rows, oldestDue: at === null ? null : Number(at) };
  }

  async setSchedule(schedule: NewSchedule, now: number): Promise<StoredSchedule> {
    return this.use((pool) => this.schedules.set(pool, schedule, now));
  }

  async getSchedule(name: string): Promise<StoredSchedule | null> {
    return this.use((pool) => this.schedules.get(pool, name));
  }

  async listSchedules(): Promise<StoredSchedule[]> {
    return this.use((pool) => this.schedules.list(pool));
  }

  async pauseSchedule(name: string, now: number): Promise<StoredSchedule | null> {
    return this.use((pool) => this.schedules.pause(pool, name, now));
  }

  async resumeSchedule(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): Promise<StoredSchedule | null> {
    return this.use((pool) => this.schedules.resume(pool, name, now, next));
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.use((pool) => this.schedules.remove(pool, name));
  }

  /**
   * One transaction: the due schedules are locked with `FOR UPDATE SKIP LOCKED`, so processes
   * firing at once each take other schedules, and a due time fires once.
   */
  async fireSchedules(request: FireRequest): Promise<FireResult> {
    return this.use((pool) => this.schedules.fire(pool, request));
  }

  async pause(name: string, now: number): Promise<boolean> {
    const { rows } = await this.use((pool) => pool.query(this.sql.pause, [name, now]));
    return rows.length === 1;
  }

  async resume(name: string): Promise<boolean> {
    const { rows } = await this.use((pool) => pool.query(this.sql.resume, [name]));
    return rows.length === 1;
  }

  async paused(): Promise<PausedName[]> {
    const { rows } = await this.use((pool) =>
      pool.query<{ name: string; paused_at: string }>(this.sql.paused),
    );
    return rows.map((row) => ({ name: row.name, pausedAt: Number(row.paused_at) }));
  }

  async throttle(key: string, until: number): Promise<void> {
    await this.use((pool) => pool.query(this.sql.throttle, [key, until]));
  }

  /** A state change of one task: the task as it is after the change, or as it was. */
  async putRecord(record: NewRecord, now: number): Promise<StoredRecord> {
    return this.use((pool) => this.records.put(pool, record, now));
  }

  async getRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    return this.use((pool) => this.records.get(pool, collection, ids));
  }

  async listRecords(collection: string, query: RecordQuery): Promise<StoredRecord[]> {
    return this.use((pool) => this.records.list(pool, collection, query));
  }

  async deleteRecord(collection: string, id: string): Promise<boolean> {
    return this.use((pool) => this.records.delete(pool, collection, id));
  }

  async appendFeedEntry(entry: NewFeedEntry, now: number): Promise<AppendedFeedEntry> {
    return this.use((pool) => this.feeds.append(pool, entry, now));
  }

  async listFeedEntries(feed: string, query: FeedQuery): Promise<FeedEntry[]> {
    return this.use((pool) => this.feeds.list(pool, feed, query));
  }

  async markFeedEntriesRead(feed: string, range: FeedRange, now: number): Promise<number> {
    return this.use((pool) => this.feeds.markRead(pool, feed, range, now));
  }

  async countUnreadFeedEntries(feed: string): Promise<number> {
    return this.use((pool) => this.feeds.countUnread(pool, feed));
  }

  /** Calls `listener` with each feed any process appended to (LISTEN/NOTIFY). */
  async watchFeeds(listener: (feed: string | null) => void): Promise<void> {
    await this.use(() => this.liveness!.watchFeeds(listener));
  }

  private async change(query: string, id: string, now: number): Promise<Change | null> {
    const rows = await this.use(async (pool) => {
      if (!isTaskId(id)) return null;
      return (await pool.query<TaskRow>(query, [id, now])).rows;
    });
    if (rows === null) return null;
    if (rows[0]) return { task: toTask(rows[0]), changed: true };
    const task = await this.get(id);
    return task ? { task, changed: false } : null;
  }

  /**
   * One of this store's statements, prepared once per connection (node-postgres keeps it by name):
   * the server plans the claim, the settle and the enqueue once instead of on every call.
   */
  private prepared(name: keyof Sql, values: unknown[]): pg.QueryConfig {
    return { name: `offload:${this.schema}:${name}`, text: this.sql[name], values };
  }

  /**
   * Runs `work` on the open pool; what the driver throws comes out as the store reports it (see
   * errors.ts).
   */
  private async use<T>(work: (pool: pg.Pool) => Promise<T>): Promise<T> {
    const pool = this.connected();
    try {
      return await work(pool);
    } catch (error) {
      throw postgresStoreError(error);
    }
  }

  private connected(): pg.Pool {
    if (!this.pool) {
      throw new Error(
        `the PostgreSQL store (schema ${this.schema}) is not open: call open() first (or it was closed)`,
      );
    }
    return this.pool;
  }
}

/** Creates the PostgreSQL store; call `open()` before using it. */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}
