import pg from 'pg';
import { OffloadError } from '../errors/offload-error.js';
import type { Logger } from '../types.js';
import { migrate, quoteIdentifier } from './migrations.js';

/**
 * A pool on the store's database with its schema migrated (or, with `mustExist`, checked to be
 * there). Throws `STORE_NOT_FOUND`, or `STORE_OPEN_FAILED` saying what to check.
 */
export async function openPool(
  config: pg.PoolConfig,
  schema: string,
  lockClass: number,
  mustExist: boolean,
  logger: Logger,
): Promise<pg.Pool> {
  const pool = new pg.Pool(config);
  // An idle connection that breaks (a server restart) is reported here; unhandled, it would
  // crash the process. The pool replaces it on the next call.
  pool.on('error', (error) =>
    logger.warn({ err: error }, 'an idle PostgreSQL connection broke; it will be replaced'),
  );
  try {
    const client = await pool.connect();
    try {
      if (mustExist) await checkSchemaExists(client, schema);
      await migrate(client, schema, `offload_${schema}`, lockClass);
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error instanceof OffloadError
      ? error
      : new OffloadError(
          'STORE_OPEN_FAILED',
          `could not open the PostgreSQL store (schema ${schema}): ${(error as Error).message}. Check the connection string, that the server is running and that this user may create the schema`,
          { cause: error },
        );
  }
  return pool;
}

async function checkSchemaExists(client: pg.PoolClient, schema: string): Promise<void> {
  const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [
    `${quoteIdentifier(schema)}.migrations`,
  ]);
  if (rows[0]?.found == null) {
    throw new OffloadError(
      'STORE_NOT_FOUND',
      `the PostgreSQL database has no Offload schema ${schema}: no Offload process has used that schema in this database`,
    );
  }
}
