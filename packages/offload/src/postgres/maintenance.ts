import type pg from 'pg';
import { interruptedError, type Rescue, type Settlement } from '../store/store.js';
import type { Logger } from '../types.js';
import { toTask, type TaskRow } from './rows.js';
import { endAttempts } from './settlements.js';
import type { Sql } from './sql.js';

/** The schema's statements, the first key of its advisory locks, and where trouble is reported. */
export interface MaintenanceContext {
  sql: Sql;
  lockClass: number;
  logger: Logger;
}

/**
 * Runs `work` in a transaction holding the schema's maintenance lock, or returns `skipped` when
 * another process holds it.
 */
export async function inMaintenance<T>(
  pool: pg.Pool,
  { sql, lockClass, logger }: MaintenanceContext,
  skipped: T,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // A connection that breaks while checked out is reported here too; unhandled, it would crash
  // the process. Its query fails as well, and the release below drops it from the pool.
  const broke = (error: Error) =>
    logger.debug({ err: error }, 'a PostgreSQL connection broke during maintenance');
  client.on('error', broke);
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ locked: boolean }>(sql.maintenanceLock, [lockClass]);
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
 * Hands back the running tasks whose lease expired, or whose owner is in `gone`; in the
 * maintenance transaction of `client`.
 */
export async function handBack(
  client: pg.PoolClient,
  { sql, lockClass }: MaintenanceContext,
  now: number,
  gone: string[],
): Promise<Rescue[]> {
  const { rows } = await client.query<TaskRow>(sql.rescuable, [now, lockClass, gone]);
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
  const rescued = await client.query<TaskRow>(sql.settleReturning, endAttempts(settlements));
  return rescued.rows.map((row) => ({ task: toTask(row), owner: owners.get(row.id) ?? null }));
}
