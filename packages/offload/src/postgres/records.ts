import type pg from 'pg';
import { prefixEnd } from '../store/ids.js';
import { checkRecordKey } from '../store/records.js';
import type { NewRecord, RecordQuery, StoredRecord } from '../store/store.js';
import { quoteIdentifier } from './migrations.js';

/** A row of `records` as node-postgres returns it: `bigint` times arrive as strings. */
interface RecordRow {
  collection: string;
  id: string;
  value: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

const COLUMNS = 'collection, id, value, revision, created_at, updated_at';

/** The record statements of one schema. */
function recordSql(schema: string) {
  const records = `${quoteIdentifier(schema)}.records`;
  // $1 collection, $2 prefix, $3 end of the prefix (null: none), $4 after (null: none), $5 limit.
  const range = `collection = $1 AND id >= $2 AND ($3::text IS NULL OR id < $3)`;
  return {
    // $1 collection, $2 id, $3 value, $4 now.
    put: `INSERT INTO ${records} AS r (${COLUMNS}) VALUES ($1, $2, $3, 1, $4, $4)
      ON CONFLICT (collection, id) DO UPDATE SET
        value = excluded.value, revision = r.revision + 1, updated_at = excluded.updated_at
      RETURNING ${COLUMNS}`,
    // $1 collection, $2 ids.
    get: `SELECT ${COLUMNS} FROM ${records} WHERE collection = $1 AND id = ANY($2::text[])`,
    ascending: `SELECT ${COLUMNS} FROM ${records}
      WHERE ${range} AND ($4::text IS NULL OR id > $4) ORDER BY id LIMIT $5`,
    descending: `SELECT ${COLUMNS} FROM ${records}
      WHERE ${range} AND ($4::text IS NULL OR id < $4) ORDER BY id DESC LIMIT $5`,
    // $1 collection, $2 id.
    delete: `DELETE FROM ${records} WHERE collection = $1 AND id = $2`,
  };
}

/** The record operations of the PostgreSQL store, on its pool: each one statement. */
export class PostgresRecords {
  private readonly sql: ReturnType<typeof recordSql>;
  /** The name the read of records is prepared under, once per connection (the hot path). */
  private readonly getName: string;

  constructor(schema: string) {
    this.sql = recordSql(schema);
    this.getName = `offload:${schema}:records.get`;
  }

  async put(
    pool: pg.Pool,
    { collection, id, value }: NewRecord,
    now: number,
  ): Promise<StoredRecord> {
    checkRecordKey(collection, id);
    const { rows } = await pool.query<RecordRow>(this.sql.put, [collection, id, value, now]);
    return toRecord(rows[0]!);
  }

  async get(pool: pg.Pool, collection: string, ids: readonly string[]): Promise<StoredRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await pool.query<RecordRow>({
      name: this.getName,
      text: this.sql.get,
      values: [collection, ids],
    });
    const byId = new Map(rows.map((row) => [row.id, toRecord(row)]));
    return ids.flatMap((id) => (byId.has(id) ? [{ ...byId.get(id)! }] : []));
  }

  async list(
    pool: pg.Pool,
    collection: string,
    { prefix = '', after, descending = false, limit }: RecordQuery,
  ): Promise<StoredRecord[]> {
    const { rows } = await pool.query<RecordRow>(
      descending ? this.sql.descending : this.sql.ascending,
      [collection, prefix, prefix === '' ? null : prefixEnd(prefix), after ?? null, limit],
    );
    return rows.map(toRecord);
  }

  async delete(pool: pg.Pool, collection: string, id: string): Promise<boolean> {
    const { rowCount } = await pool.query(this.sql.delete, [collection, id]);
    return rowCount === 1;
  }
}

function toRecord(row: RecordRow): StoredRecord {
  return {
    collection: row.collection,
    id: row.id,
    value: row.value,
    revision: row.revision,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}
