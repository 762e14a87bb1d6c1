import type Database from 'better-sqlite3';
import type {
  EnqueueResult,
  FireRequest,
  FireResult,
  NewSchedule,
  StoredSchedule,
} from '../store/store.js';
import type { Statements } from './statements.js';
import { enqueueKeyed, writer, type WriteGuard } from './transactions.js';

/** A row of `offload_schedules` as better-sqlite3 returns it. */
interface ScheduleRow {
  name: string;
  rule: string;
  task: string;
  payload: string;
  options: string;
  paused: 0 | 1;
  next_run_at: number | null;
  last_run_at: number | null;
  last_task_id: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS =
  'name, rule, task, payload, options, paused, next_run_at, last_run_at, last_task_id, created_at, updated_at';

/** The schedule operations of one connection; each write is one IMMEDIATE transaction. */
export interface ScheduleTransactions {
  set(schedule: NewSchedule, now: number): StoredSchedule;
  get(name: string): StoredSchedule | null;
  list(): StoredSchedule[];
  pause(name: string, now: number): StoredSchedule | null;
  resume(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): StoredSchedule | null;
  remove(name: string): boolean;
  fire(request: FireRequest): FireResult;
}

export function createScheduleTransactions(
  db: Database.Database,
  tasks: Statements,
  guard: WriteGuard,
): ScheduleTransactions {
  const write = writer(db, guard);
  const row = <P extends unknown[]>(sql: string) => db.prepare<P, ScheduleRow>(sql);
  const statements = {
    // A replacement keeps the due time of an unchanged rule; SET reads the row as it was.
    set: row<[NewSchedule & { now: number }]>(
      `INSERT INTO offload_schedules (${COLUMNS})
       VALUES (@name, @rule, @task, @payload, @options, 0, @nextRunAt, NULL, NULL, @now, @now)
       ON CONFLICT (name) DO UPDATE SET
         rule = excluded.rule, task = excluded.task, payload = excluded.payload,
         options = excluded.options, updated_at = excluded.updated_at,
         next_run_at = CASE WHEN paused = 1 THEN NULL
                            WHEN rule = excluded.rule AND next_run_at IS NOT NULL THEN next_run_at
                            ELSE excluded.next_run_at END
       RETURNING ${COLUMNS}`,
    ),
    get: row<[string]>(`SELECT ${COLUMNS} FROM offload_schedules WHERE name = ?`),
    list: row<[]>(`SELECT ${COLUMNS} FROM offload_schedules ORDER BY name`),
    pause: row<[number, string]>(
      `UPDATE offload_schedules SET paused = 1, next_run_at = NULL, updated_at = ?
       WHERE name = ? AND paused = 0 RETURNING ${COLUMNS}`,
    ),
    resume: row<[number | null, number, string]>(
      `UPDATE offload_schedules SET paused = 0, next_run_at = ?, updated_at = ?
       WHERE name = ? RETURNING ${COLUMNS}`,
    ),
    remove: db.prepare<[string]>(`DELETE FROM offload_schedules WHERE name = ?`),
    firstDue: db
      .prepare<[], number | null>(
        `SELECT min(next_run_at) FROM offload_schedules INDEXED BY offload_schedules_due
         WHERE paused = 0 AND next_run_at IS NOT NULL`,
      )
      .pluck(),
    due: row<[number, number]>(
      `SELECT ${COLUMNS} FROM offload_schedules INDEXED BY offload_schedules_due
       WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ?
       ORDER BY next_run_at LIMIT CAST(? AS INTEGER)`,
    ),
    advance: row<[number | null, number | null, string | null, string]>(
      `UPDATE offload_schedules SET next_run_at = ?,
         last_run_at = coalesce(?, last_run_at), last_task_id = coalesce(?, last_task_id)
       WHERE name = ? RETURNING ${COLUMNS}`,
    ),
  };

  const fire = write(({ now, limit, plan }: FireRequest): FireResult => {
    let id = tasks.nextId.get()!;
    const fired = statements.due.all(now, limit).map((due) => {
      const { tasks: planned, lastRunAt, nextRunAt } = plan(toSchedule(due));
      const results: EnqueueResult[] = [];
      for (const task of planned) {
        const result = enqueueKeyed(tasks, id, task);
        if (result.created) id += 1;
        results.push(result);
      }
      const last = results.length > 0 ? results[results.length - 1]!.task.id : null;
      const schedule = statements.advance.get(
        nextRunAt,
        last === null ? null : lastRunAt,
        last,
        due.name,
      )!;
      return { schedule: toSchedule(schedule), results };
    });
    return { fired, nextRunAt: statements.firstDue.get() ?? null };
  });

  return {
    set: write((schedule: NewSchedule, now: number) =>
      toSchedule(statements.set.get({ ...schedule, now })!),
    ),
    get: (name) => nullable(statements.get.get(name)),
    list: () => statements.list.all().map(toSchedule),
    pause: write((name: string, now: number) =>
      nullable(statements.pause.get(now, name) ?? statements.get.get(name)),
    ),
    resume: write(
      (name: string, now: number, next: (schedule: StoredSchedule) => number | null) => {
        const stored = statements.get.get(name);
        if (!stored || stored.paused === 0) return nullable(stored);
        return toSchedule(statements.resume.get(next(toSchedule(stored)), now, name)!);
      },
    ),
    remove: write((name: string) => statements.remove.run(name).changes === 1),
    fire: (request) => {
      // A read first: a look that finds nothing due takes no write lock, which the other
      // processes on the file would have to wait for.
      const first = statements.firstDue.get() ?? null;
      if (first === null || first > request.now) return { fired: [], nextRunAt: first };
      return fire(request);
    },
  };
}

function nullable(row: ScheduleRow | undefined): StoredSchedule | null {
  return row ? toSchedule(row) : null;
}

function toSchedule(row: ScheduleRow): StoredSchedule {
  return {
    name: row.name,
    rule: row.rule,
    task: row.task,
    payload: row.payload,
    options: row.options,
    paused: row.paused === 1,
    nextRunAt: row.next_run_at,
    lastRunAt: row.last_run_at,
    lastTaskId: row.last_task_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
