import type Database from 'better-sqlite3';
import { checkRecordKey } from '../store/records.js';
import type { NewRecord, RecordQuery, StoredRecord } from '../store/store.js';
import { prefixEnd } from '../store/ids.js';
import { writer, type WriteGuard } from './transactions.js';

/** A row of `offload_records` as better-sqlite3 returns it. */
interface RecordRow {
  collection: string;
  id: string;
  value: string;
  revision: number;
  created_at: number;
  updated_at: number;
}

const COLUMNS = 'collection, id, value, revision, created_at, updated_at';
/** SQLite sorts every BLOB after every TEXT: the end of a prefix that has none. */
const ABOVE_ALL_TEXT = Buffer.alloc(0);

/** The record operations of one connection; each write is one IMMEDIATE transaction. */
export interface RecordTransactions {
  put(record: NewRecord, now: number): StoredRecord;
  get(collection: string, ids: readonly string[]): StoredRecord[];
  list(collection: string, query: RecordQuery): StoredRecord[];
  delete(collection: string, id: string): boolean;
}

export function createRecordTransactions(
  db: Database.Database,
  guard: WriteGuard,
): RecordTransactions {
  const write = writer(db, guard);
  const row = <P extends unknown[]>(sql: string) => db.prepare<P, RecordRow>(sql);
  // The ids with the prefix are an index range: from the prefix to the end of it.
  const range = 'collection = @collection AND id >= @prefix AND id < @end';
  type Range = {
    collection: string;
    prefix: string;
    end: string | Buffer;
    after: string | null;
    limit: number;
  };
  const statements = {
    put: row<[NewRecord & { now: number }]>(
      `INSERT INTO offload_records (${COLUMNS})
       VALUES (@collection, @id, @value, 1, @now, @now)
       ON CONFLICT (collection, id) DO UPDATE SET
         value = excluded.value, revision = revision + 1, updated_at = excluded.updated_at
       RETURNING ${COLUMNS}`,
    ),
    get: row<[string, string]>(
      `SELECT ${COLUMNS} FROM offload_records WHERE collection = ? AND id = ?`,
    ),
    ascending: row<[Range]>(
      `SELECT ${COLUMNS} FROM offload_records
       WHERE ${range} AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @limit`,
    ),
    descending: row<[Range]>(
      `SELECT ${COLUMNS} FROM offload_records
       WHERE ${range} AND (@after IS NULL OR id < @after) ORDER BY id DESC LIMIT @limit`,
    ),
    delete: db.prepare<[string, string]>(
      `DELETE FROM offload_records WHERE collection = ? AND id = ?`,
    ),
  };
  // Several ids are read in one transaction, so that they come from one snapshot.
  const getMany = db.transaction((collection: string, ids: readonly string[]) =>
    ids.flatMap((id) => {
      const found = statements.get.get(collection, id);
      return found ? [toRecord(found)] : [];
    }),
  );

  return {
    put: write((record: NewRecord, now: number) => {
      checkRecordKey(record.collection, record.id);
      return toRecord(statements.put.get({ ...record, now })!);
    }),
    get: (collection, ids) => {
      if (ids.length === 1) {
        const found = statements.get.get(collection, ids[0]!);
        return found ? [toRecord(found)] : [];
      }
      return getMany.deferred(collection, ids);
    },
    list: (collection, { prefix = '', after, descending = false, limit }) => {
      const range: Range = {
        collection,
        prefix,
        end: prefixEnd(prefix) ?? ABOVE_ALL_TEXT,
        after: after ?? null,
        limit,
      };
      return (descending ? statements.descending : statements.ascending).all(range).map(toRecord);
    },
    delete: write(
      (collection: string, id: string) => statements.delete.run(collection, id).changes === 1,
    ),
  };
}

function toRecord(row: RecordRow): StoredRecord {
  return {
    collection: row.collection,
    id: row.id,
    value: row.value,
    revision: row.revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
