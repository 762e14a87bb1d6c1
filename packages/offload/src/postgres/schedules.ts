import type pg from 'pg';
import type {
  EnqueueResult,
  FireRequest,
  FireResult,
  NewSchedule,
  StoredSchedule,
} from '../store/store.js';
import type { Logger } from '../types.js';
import { enqueueTasks } from './enqueue.js';
import { quoteIdentifier } from './migrations.js';
import type { Sql } from './sql.js';

/** A row of `schedules` as node-postgres returns it: `bigint` times arrive as strings. */
interface ScheduleRow {
  name: string;
  rule: string;
  task: string;
  payload: string;
  options: string;
  paused: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_task_id: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS =
  'name, rule, task, payload, options, paused, next_run_at, last_run_at, last_task_id, created_at, updated_at';

/** The schedule statements of one schema. */
function scheduleSql(schema: string) {
  const schedules = `${quoteIdentifier(schema)}.schedules`;
  const DUE = 'NOT paused AND next_run_at IS NOT NULL';
  return {
    // $1 name, $2 rule, $3 task, $4 payload, $5 options, $6 next run at, $7 now. A replacement
    // keeps the due time of an unchanged rule; SET reads the row as it was.
    set: `INSERT INTO ${schedules} AS s (${COLUMNS})
      VALUES ($1, $2, $3, $4, $5, false, $6, NULL, NULL, $7, $7)
      ON CONFLICT (name) DO UPDATE SET
        rule = excluded.rule, task = excluded.task, payload = excluded.payload,
        options = excluded.options, updated_at = excluded.updated_at,
        next_run_at = CASE WHEN s.paused THEN NULL
                           WHEN s.rule = excluded.rule AND s.next_run_at IS NOT NULL THEN s.next_run_at
                           ELSE excluded.next_run_at END
      RETURNING ${COLUMNS}`,
    get: `SELECT ${COLUMNS} FROM ${schedules} WHERE name = $1`,
    lock: `SELECT ${COLUMNS} FROM ${schedules} WHERE name = $1 FOR UPDATE`,
    list: `SELECT ${COLUMNS} FROM ${schedules} ORDER BY name`,
    // $1 now, $2 name.
    pause: `UPDATE ${schedules} SET paused = true, next_run_at = NULL, updated_at = $1
      WHERE name = $2 AND NOT paused RETURNING ${COLUMNS}`,
    // $1 next run at, $2 now, $3 name.
    resume: `UPDATE ${schedules} SET paused = false, next_run_at = $1, updated_at = $2
      WHERE name = $3 RETURNING ${COLUMNS}`,
    remove: `DELETE FROM ${schedules} WHERE name = $1`,
    firstDue: `SELECT min(next_run_at) AS at FROM ${schedules} WHERE ${DUE}`,
    // $1 now, $2 limit. A schedule another transaction is firing is skipped, not waited for; one
    // it fired meanwhile is read again as committed, no longer due.
    due: `SELECT ${COLUMNS} FROM ${schedules}
      WHERE ${DUE} AND next_run_at <= $1 ORDER BY next_run_at LIMIT $2
      FOR UPDATE SKIP LOCKED`,
    // $1 names, $2 next run at, $3 last run at, $4 last task ids: the schedules of one firing.
    advance: `UPDATE ${schedules} s SET next_run_at = u.next_run_at,
        last_run_at = coalesce(u.last_run_at, s.last_run_at),
        last_task_id = coalesce(u.last_task_id, s.last_task_id)
      FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[])
        AS u (name, next_run_at, last_run_at, last_task_id)
      WHERE s.name = u.name
      RETURNING ${COLUMNS.split(', ')
        .map((column) => `s.${column}`)
        .join(', ')}`,
  };
}

type ScheduleSql = ReturnType<typeof scheduleSql>;

/** The schedule operations of the PostgreSQL store, on its pool. */
export class PostgresSchedules {
  private readonly sql: ScheduleSql;

  constructor(
    schema: string,
    /** The store's task statements: fired tasks are enqueued as `enqueue` does. */
    private readonly tasks: Sql,
    private readonly logger: Logger,
  ) {
    this.sql = scheduleSql(schema);
  }

  async set(pool: pg.Pool, s: NewSchedule, now: number): Promise<StoredSchedule> {
    const values = [s.name, s.rule, s.task, s.payload, s.options, s.nextRunAt, now];
    const { rows } = await pool.query<ScheduleRow>(this.sql.set, values);
    return toSchedule(rows[0]!);
  }

  async get(pool: pg.Pool, name: string): Promise<StoredSchedule | null> {
    const { rows } = await pool.query<ScheduleRow>(this.sql.get, [name]);
    return rows[0] ? toSchedule(rows[0]) : null;
  }

  async list(pool: pg.Pool): Promise<StoredSchedule[]> {
    const { rows } = await pool.query<ScheduleRow>(this.sql.list);
    return rows.map(toSchedule);
  }

  async pause(pool: pg.Pool, name: string, now: number): Promise<StoredSchedule | null> {
    const { rows } = await pool.query<ScheduleRow>(this.sql.pause, [now, name]);
    return rows[0] ? toSchedule(rows[0]) : this.get(pool, name);
  }

  resume(
    pool: pg.Pool,
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): Promise<StoredSchedule | null> {
    return this.inTransaction(pool, async (client) => {
      const { rows } = await client.query<ScheduleRow>(this.sql.lock, [name]);
      if (!rows[0] || !rows[0].paused) return rows[0] ? toSchedule(rows[0]) : null;
      const resumed = await client.query<ScheduleRow>(this.sql.resume, [
        next(toSchedule(rows[0])),
        now,
        name,
      ]);
      return toSchedule(resumed.rows[0]!);
    });
  }

  async remove(pool: pg.Pool, name: string): Promise<boolean> {
    const { rowCount } = await pool.query(this.sql.remove, [name]);
    return rowCount === 1;
  }

  async fire(pool: pg.Pool, { now, limit, plan }: FireRequest): Promise<FireResult> {
    // A read first: an idle look opens no transaction.
    const first = await this.firstDue(pool);
    if (first === null || first > now) return { fired: [], nextRunAt: first };
    return this.inTransaction(pool, async (client) => {
      const { rows } = await client.query<ScheduleRow>(this.sql.due, [now, limit]);
      if (rows.length === 0) return { fired: [], nextRunAt: await this.firstDue(client) };
      // The same few statements however many schedules are due: their tasks in one insert, their
      // next times in one update.
      const plans = rows.map((row) => plan(toSchedule(row)));
      const tasks = plans.flatMap((p) => p.tasks);
      const enqueued: EnqueueResult[] =
        tasks.length === 0
          ? []
          : await enqueueTasks(tasks, (name, values) => client.query(this.tasks[name], values));
      let next = 0;
      const results = plans.map((p) => enqueued.slice(next, (next += p.tasks.length)));
      const lastIds = results.map((r) => r.at(-1)?.task.id ?? null);
      const advanced = await client.query<ScheduleRow>(this.sql.advance, [
        rows.map((row) => row.name),
        plans.map((p) => p.nextRunAt),
        plans.map((p, i) => (lastIds[i] === null ? null : p.lastRunAt)),
        lastIds,
      ]);
      const byName = new Map(advanced.rows.map((row) => [row.name, toSchedule(row)]));
      const fired = rows.map((row, i) => ({
        schedule: byName.get(row.name)!,
        results: results[i]!,
      }));
      return { fired, nextRunAt: await this.firstDue(client) };
    });
  }

  private async firstDue(client: pg.Pool | pg.PoolClient): Promise<number | null> {
    const { rows } = await client.query<{ at: string | null }>(this.sql.firstDue);
    const at = rows[0]?.at ?? null;
    return at === null ? null : Number(at);
  }

  private async inTransaction<T>(
    pool: pg.Pool,
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    const client = await pool.connect();
    // A connection that breaks while checked out is reported here; unhandled, it would crash the
    // process. Its query fails as well, and the release below drops it from the pool.
    const broke = (error: Error) =>
      this.logger.debug({ err: error }, 'a PostgreSQL connection broke while firing schedules');
    client.on('error', broke);
    try {
      await client.query('BEGIN');
      const result = await work(client);
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
}

function time(value: string | null): number | null {
  return value === null ? null : Number(value);
}

function toSchedule(row: ScheduleRow): StoredSchedule {
  return {
    name: row.name,
    rule: row.rule,
    task: row.task,
    payload: row.payload,
    options: row.options,
    paused: row.paused,
    nextRunAt: time(row.next_run_at),
    lastRunAt: time(row.last_run_at),
    lastTaskId: row.last_task_id,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
