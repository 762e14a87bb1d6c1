import pg from 'pg';
import { OffloadError } from '../errors/offload-error.js';
import {
  describe,
  durationOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import type { ListFilter, Logger, Task, TaskPage } from '../types.js';
import { prefixEnd } from '../store/ids.js';
import {
  insertedTask,
  interruptedError,
  type Change,
  type ClaimedTask,
  type ClaimRequest,
  type EnqueueResult,
  type Lease,
  type NewTask,
  type Rescue,
  type Settlement,
  type SqlClient,
  type Store,
  type StoreStats,
} from '../store/store.js';
import { encodeError } from '../store/stored-error.js';
import { AbsentOwners } from './absent-owners.js';
import { Liveness } from './liveness.js';
import { migrate, NAME_PATTERN, quoteIdentifier } from './migrations.js';
import { byClaimOrder, compareIds, toClaimedTask, toTask, type TaskRow } from './rows.js';
import { buildSql, type Sql } from './sql.js';

/** Options of `postgresStore`. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`, as node-postgres takes it. */
  connectionString: string;
  /** The schema that holds Offload's tables; created when missing. Default `offload`. */
  schema?: string;
  /**
   * Open an existing store only: `open()` fails with `STORE_NOT_FOUND` instead of creating a
   * missing schema, for tools that read or change tasks and must not make an empty store of a
   * mistyped schema name. A schema that exists is still brought up to date. Default false.
   */
  mustExist?: boolean;
  /**
   * Connections this process keeps open at most; default 10. A runner uses about three at once
   * (claim, settle, maintenance); HTTP requests that enqueue share them, as their writes are
   * grouped per event-loop turn. Keep the sum over all processes below the server's
   * `max_connections`.
   */
  poolSize?: number;
  /** How long to wait for a connection before a call fails, in ms; default 5000. */
  connectTimeout?: number;
  /** Where connection trouble is reported. Default: nowhere (the calls that fail still throw). */
  logger?: Logger;
}

const DEFAULT_SCHEMA = 'offload';
const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT = 5000;
/** Larger than any id: the cursor of the first page. */
const NO_CURSOR = '9223372036854775807';
const CANONICAL_ID = /^[1-9][0-9]{0,18}$/;

/** Whether `id` is one this store could have handed out: a bigint in canonical decimal form. */
function isTaskId(id: string): boolean {
  return typeof id === 'string' && CANONICAL_ID.test(id) && (id.length < 19 || id <= NO_CURSOR);
}

const silent: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silent,
};

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
  /** A rescue of this store is under way (another one at once would find the lock taken). */
  private rescuing = false;

  constructor(options: PostgresStoreOptions) {
    rejectUnknownKeys('postgresStore options', options, [
      'connectionString',
      'schema',
      'mustExist',
      'poolSize',
      'connectTimeout',
      'logger',
    ]);
    if (
      typeof options.connectionString !== 'string' ||
      !/^postgres(ql)?:\/\//.test(options.connectionString)
    ) {
      throw new InvalidOptionError(
        'postgresStore.connectionString',
        'must be a postgres:// URL, e.g. postgres://user@localhost:5432/app',
      );
    }
    const schema = options.schema ?? DEFAULT_SCHEMA;
    if (typeof schema !== 'string' || !NAME_PATTERN.test(schema)) {
      throw new InvalidOptionError(
        'postgresStore.schema',
        `must be 1 to 63 lower-case letters, digits or "_", starting with a letter or "_", got ${JSON.stringify(schema)}`,
      );
    }
    this.schema = schema;
    this.sql = buildSql(schema);
    this.lockClass = lockClassOf(schema);
    this.channel = quoteIdentifier(`offload_${schema}`);
    this.logger = options.logger ?? silent;
    this.mustExist = options.mustExist ?? false;
    this.poolConfig = {
      connectionString: options.connectionString,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
      application_name: 'offload',
    };
    if (!Number.isInteger(this.poolConfig.max) || this.poolConfig.max! < 1) {
      throw new InvalidOptionError(
        'postgresStore.poolSize',
        `must be a whole number of connections >= 1, got ${describe(options.poolSize)}`,
      );
    }
    durationOption('postgresStore.connectTimeout', this.poolConfig.connectionTimeoutMillis);
  }

  open(): Promise<void> {
    if (this.pool) return Promise.resolve();
    return (this.opening ??= this.connect().finally(() => (this.opening = null)));
  }

  private async connect(): Promise<void> {
    const pool = new pg.Pool(this.poolConfig);
    // An idle connection that breaks (a server restart) is reported here; unhandled, it would
    // crash the process. The pool replaces it on the next call.
    pool.on('error', (error) =>
      this.logger.warn({ err: error }, 'an idle PostgreSQL connection broke; it will be replaced'),
    );
    try {
      const client = await pool.connect();
      try {
        if (this.mustExist) await this.checkSchemaExists(client);
        await migrate(client, this.schema, `offload_${this.schema}`, this.lockClass);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error instanceof OffloadError
        ? error
        : new OffloadError(
            'STORE_OPEN_FAILED',
            `could not open the PostgreSQL store (schema ${this.schema}): ${(error as Error).message}. Check DATABASE_URL, that the server is running and that this user may create the schema`,
            { cause: error },
          );
    }
    this.pool = pool;
    this.liveness = new Liveness(
      {
        connectionString: this.poolConfig.connectionString,
        connectionTimeoutMillis: this.poolConfig.connectionTimeoutMillis,
        application_name: 'offload-liveness',
      },
      this.channel,
      this.lockClass,
      this.logger,
    );
  }

  private async checkSchemaExists(client: pg.PoolClient): Promise<void> {
    const { rows } = await client.query<{ found: string | null }>(
      'SELECT to_regclass($1) AS found',
      [`${quoteIdentifier(this.schema)}.migrations`],
    );
    if (rows[0]?.found == null) {
      throw new OffloadError(
        'STORE_NOT_FOUND',
        `the PostgreSQL database has no Offload schema ${this.schema}: no Offload process has used that schema in this database`,
      );
    }
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
    await this.connected().query('SELECT 1');
  }

  /**
   * Takes the advisory lock of `owner` on a dedicated connection: other processes see the owner
   * alive while the session lasts. Refuses an owner that another live process holds.
   */
  async registerWorker(owner: string): Promise<void> {
    this.connected();
    await this.liveness!.register(owner);
    this.owners.add(owner);
  }

  async unregisterWorker(owner: string): Promise<void> {
    this.connected();
    this.owners.delete(owner);
    await this.liveness!.unregister(owner);
  }

  /** Calls `listener` when any process added tasks (LISTEN/NOTIFY). */
  async watch(listener: () => void): Promise<void> {
    this.connected();
    await this.liveness!.watch(listener);
  }

  async enqueue(tasks: readonly NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]> {
    this.connected();
    if (tasks.length === 0) return [];
    const column = <K extends keyof NewTask>(key: K) => tasks.map((task) => task[key]);
    const values = [
      column('name'),
      column('payload'),
      column('priority'),
      column('maxAttempts'),
      column('timeout'),
      column('key'),
      column('runAt'),
      column('createdAt'),
    ];
    const { rows } = await this.write<{ id: string; key: string | null }>(
      transaction,
      'enqueue',
      values,
    );
    // Ids grow in request order; rows skipped for a stored key are the only gaps.
    rows.sort((a, b) => compareIds(a.id, b.id));
    const results: (EnqueueResult | null)[] = [];
    let next = 0;
    for (const task of tasks) {
      const row = rows[next];
      if (row !== undefined && row.key === task.key) {
        results.push({ task: insertedTask(row.id, task), created: true });
        next += 1;
      } else {
        results.push(null); // its key is stored already
      }
    }
    const missing = tasks.flatMap((task, i) => (results[i] === null ? [task.key!] : []));
    if (missing.length > 0) {
      const stored = await this.write<TaskRow>(transaction, 'byKeys', [missing]);
      const byKey = new Map(stored.rows.map((row) => [row.key, row]));
      tasks.forEach((task, i) => {
        if (results[i] !== null) return;
        const row = byKey.get(task.key);
        if (!row) {
          // Deleted between the two statements (canceled and pruned): rare, and the caller can retry.
          throw new OffloadError(
            'STORE_CONFLICT',
            `the task with key ${JSON.stringify(task.key)} changed while it was enqueued; try again`,
          );
        }
        results[i] = { task: toTask(row), created: false };
      });
    }
    return results as EnqueueResult[];
  }

  async claim(request: ClaimRequest): Promise<ClaimedTask[]> {
    const { owner, names, limit, now, leaseExpiresAt } = request;
    const pool = this.connected();
    if (!this.owners.has(owner)) {
      throw new Error(
        `PostgresStore.claim: the worker "${owner}" is not registered in this store; call registerWorker("${owner}") first, or other processes would take its tasks as abandoned`,
      );
    }
    if (names.length === 0 || limit <= 0) return [];
    const { rows } = await pool.query<TaskRow>(
      this.prepared('claim', [now, names, limit, owner, leaseExpiresAt]),
    );
    rows.sort(byClaimOrder);
    return rows.map(toClaimedTask);
  }

  /**
   * One statement for the batch. A task settled twice in one batch (a bug upstream, but the
   * answer must still be exact) takes one statement per occurrence, in order.
   */
  async settle(settlements: readonly Settlement[]): Promise<boolean[]> {
    const pool = this.connected();
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
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<string[]> {
    if (leases.length === 0) return [];
    const { rows } = await this.connected().query<{ id: string }>(
      this.prepared('renew', [
        leases.map((l) => checkId(l.id)),
        leases.map((l) => l.lease),
        expiresAt,
      ]),
    );
    const renewed = new Set(rows.map((row) => row.id));
    return leases.filter((l) => !renewed.has(l.id)).map((l) => l.id);
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
    this.connected();
    const liveness = this.liveness!;
    if (this.rescuing) return [];
    this.rescuing = true;
    try {
      const session = await liveness.session();
      const rescued = await this.maintenance<Rescue[] | null>(null, async (client) => {
        const free = await client.query<{ owner: string }>(this.sql.unlockedOwners, [
          this.lockClass,
        ]);
        const others = free.rows.map((row) => row.owner).filter((o) => !this.owners.has(o));
        // The look counts only if this process's own session lasted through it.
        let gone: string[] = [];
        if (liveness.currentSession === session) gone = this.absent.observe(others, session);
        else this.absent.forget();
        return this.handBack(client, now, gone);
      });
      if (rescued === null) this.absent.forget();
      return rescued ?? [];
    } catch (error) {
      this.absent.forget();
      throw error;
    } finally {
      this.rescuing = false;
    }
  }

  /** Hands back the running tasks whose lease expired, or whose owner is in `gone`. */
  private async handBack(client: pg.PoolClient, now: number, gone: string[]): Promise<Rescue[]> {
    const { rows } = await client.query<TaskRow>(this.sql.rescuable, [now, this.lockClass, gone]);
    if (rows.length === 0) return [];
    const settlements: Settlement[] = rows.map((row) => ({
      id: row.id,
      lease: row.lease,
      state: row.attempts >= row.max_attempts ? 'failed' : 'queued',
      at: now,
      runAt: now,
      error: interruptedError(row.attempts, now, row.lease_owner),
    }));
    const owners = new Map(rows.map((row) => [row.id, row.lease_owner]));
    const rescued = await client.query<TaskRow>(this.sql.settleReturning, endAttempts(settlements));
    return rescued.rows.map((row) => ({ task: toTask(row), owner: owners.get(row.id) ?? null }));
  }

  async get(id: string): Promise<Task | null> {
    const pool = this.connected();
    if (!isTaskId(id)) return null;
    const { rows } = await pool.query<TaskRow>(this.prepared('byId', [id]));
    return rows[0] ? toTask(rows[0]) : null;
  }

  async list({
    state,
    name,
    keyPrefix,
    limit,
    cursor,
  }: ListFilter & { limit: number }): Promise<TaskPage> {
    const pool = this.connected();
    const below = cursor === undefined ? NO_CURSOR : parseCursor(cursor);
    const page = [below, name ?? null, limit + 1];
    let query: string;
    let parameters: unknown[];
    if (keyPrefix !== undefined) {
      const end = prefixEnd(keyPrefix);
      query = end === null ? this.sql.listByKeyUnbounded : this.sql.listByKey;
      parameters = [...page, keyPrefix, end, state ?? null];
    } else if (state === undefined) {
      [query, parameters] = [this.sql.list, page];
    } else if (state === 'queued' || state === 'running') {
      [query, parameters] = [state === 'queued' ? this.sql.listQueued : this.sql.listRunning, page];
    } else {
      [query, parameters] = [this.sql.listFinished, [...page, state]];
    }
    const { rows } = await pool.query<TaskRow>(query, parameters);
    const more = rows.length > limit;
    if (more) rows.length = limit;
    const tasks = rows.map((row) => toTask(row));
    return { tasks, nextCursor: more ? tasks[tasks.length - 1]!.id : null };
  }

  async cancel(id: string, now: number): Promise<Change | null> {
    return this.change(this.sql.cancel, id, now);
  }

  async retry(id: string, now: number): Promise<Change | null> {
    return this.change(this.sql.retry, id, now);
  }

  /** Runs on one process at a time: a process that finds another one at it deletes nothing. */
  async prune(before: number, limit: number): Promise<number> {
    return this.maintenance(0, async (client) => {
      const { rowCount } = await client.query(this.sql.prune, [before, limit]);
      return rowCount ?? 0;
    });
  }

  async stats(now: number): Promise<StoreStats> {
    const pool = this.connected();
    const [counts, oldest] = await Promise.all([
      pool.query<{ name: string; state: Task['state']; count: number }>(this.sql.counts),
      pool.query<{ at: string | null }>(this.sql.oldestDue, [now]),
    ]);
    const at = oldest.rows[0]?.at ?? null;
    return { counts: counts.rows, oldestDue: at === null ? null : Number(at) };
  }

  /** A state change of one task: the task as it is after the change, or as it was. */
  private async change(query: string, id: string, now: number): Promise<Change | null> {
    const pool = this.connected();
    if (!isTaskId(id)) return null;
    const { rows } = await pool.query<TaskRow>(query, [id, now]);
    if (rows[0]) return { task: toTask(rows[0]), changed: true };
    const task = await this.get(id);
    return task ? { task, changed: false } : null;
  }

  /**
   * Runs `work` in a transaction holding this schema's maintenance lock, or returns `skipped`
   * when another process holds it.
   */
  private async maintenance<T>(
    skipped: T,
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    const client = await this.connected().connect();
    // A connection that breaks while checked out is reported here too; unhandled, it would crash
    // the process. Its query fails as well, and the release below drops it from the pool.
    const broke = (error: Error) =>
      this.logger.debug({ err: error }, 'a PostgreSQL connection broke during maintenance');
    client.on('error', broke);
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ locked: boolean }>(this.sql.maintenanceLock, [
        this.lockClass,
      ]);
      const result = rows[0]!.locked ? await work(client) : skipped;
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.removeListener('error', broke);
      client.release();
    }
  }

  /**
   * One of this store's statements, prepared once per connection (node-postgres keeps it by name):
   * the server plans the claim, the settle and the enqueue once instead of on every call.
   */
  private prepared(name: keyof Sql, values: unknown[]): pg.QueryConfig {
    return { name: `offload:${this.schema}:${name}`, text: this.sql[name], values };
  }

  /**
   * Runs an enqueue statement on the caller's connection, in their transaction, as a plain
   * statement (nothing of ours is left prepared on it), or on the pool, prepared.
   */
  private write<R extends object>(
    transaction: SqlClient | undefined,
    name: 'enqueue' | 'byKeys',
    values: unknown[],
  ): Promise<{ rows: R[] }> {
    return transaction
      ? transaction.query<R>(this.sql[name], values)
      : this.connected().query<R>(this.prepared(name, values));
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

/** Splits settlements (by index) into batches in which each task appears once, in order. */
function rounds(settlements: readonly Settlement[]): number[][] {
  const batches: number[][] = [];
  const seen = new Map<string, number>();
  settlements.forEach((s, i) => {
    const round = seen.get(s.id) ?? 0;
    seen.set(s.id, round + 1);
    (batches[round] ??= []).push(i);
  });
  return batches;
}

/** The parameters of the `settle` statements: one array per column. */
function endAttempts(settlements: readonly Settlement[]): unknown[] {
  const queued = (s: Settlement) => s.state === 'queued';
  return [
    settlements.map((s) => checkId(s.id)),
    settlements.map((s) => s.lease),
    settlements.map((s) => s.state),
    settlements.map((s) => (s.refund ? 1 : 0)),
    settlements.map((s) => (queued(s) ? (s.runAt ?? s.at) : null)),
    settlements.map((s) => (queued(s) ? null : s.at)),
    settlements.map((s) => (s.error ? encodeError(s.error) : null)),
    settlements.map((s) => (s.state === 'succeeded' ? (s.result ?? null) : null)),
  ];
}

/** Ids come from this store; anything else would be a bug upstream, not user input. */
function checkId(id: string): string {
  if (!isTaskId(id)) throw new TypeError(`not a task id of this store: ${id}`);
  return id;
}

function parseCursor(cursor: string): string {
  if (!isTaskId(cursor)) {
    throw new OffloadError(
      'INVALID_CURSOR',
      `the cursor ${JSON.stringify(cursor)} is not one this store hands out: pass the nextCursor of the previous page`,
    );
  }
  return cursor;
}

/** A stable 32-bit number for the schema: the first key of its advisory locks. */
export function lockClassOf(schema: string): number {
  let hash = 0x811c9dc5; // FNV-1a
  for (const char of `offload:${schema}`) {
    hash ^= char.codePointAt(0)!;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash | 0;
}

/** Creates the PostgreSQL store; call `open()` before using it. */
export function postgresStore(options: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options);
}
