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
  const cache = new RecordCache(db);
  const read = (collection: string, id: string): StoredRecord | null => {
    const key = cacheKey(collection, id);
    let found = cache.get(key);
    if (found === undefined) {
      const row = statements.get.get(collection, id);
      found = row ? toRecord(row) : null;
      cache.set(key, found);
    }
    return found;
  };
  // Several ids are read in one transaction, so that they come from one snapshot.
  const readMany = db.transaction((collection: string, ids: readonly string[]) => {
    cache.check();
    return ids.flatMap((id) => {
      const found = read(collection, id);
      return found ? [{ ...found }] : [];
    });
  });
  const put = write((record: NewRecord, now: number) => {
    checkRecordKey(record.collection, record.id);
    return toRecord(statements.put.get({ ...record, now })!);
  });
  const remove = write(
    (collection: string, id: string) => statements.delete.run(collection, id).changes === 1,
  );

  return {
    put: (record, now) => {
      const stored = put(record, now);
      cache.wrote(cacheKey(record.collection, record.id), stored);
      return { ...stored };
    },
    get: (collection, ids) => {
      if (ids.length !== 1) return readMany.deferred(collection, ids);
      cache.check();
      const found = read(collection, ids[0]!);
      return found ? [{ ...found }] : [];
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
    delete: (collection, id) => {
      const deleted = remove(collection, id);
      cache.wrote(cacheKey(collection, id), null);
      return deleted;
    },
  };
}

function cacheKey(collection: string, id: string): string {
  return `${collection}\0${id}`;
}

/** Records kept at most; past it the cache starts over. */
const CACHED = 10_000;
/** How long a check of `data_version` holds, in ms: a commit elsewhere is seen within it. */
const CHECK_HOLDS = 1;
/** Counts the writes of records by every connection of this process, so that each sees them at once. */
let writes = 0;

/**
 * Records read or written lately through this connection (null: known to be absent), kept while
 * no other connection commits: `PRAGMA data_version` changes when another connection (of this
 * process or another) commits anything, and the cache is then dropped. The pragma costs about as
 * much as a lookup, so it is read at most once a millisecond, unless a connection of this process
 * wrote a record meanwhile: a record another process commits is read within a millisecond, one
 * this process writes at once. This connection's own writes of records update the cache; its
 * other writes touch no record.
 */
class RecordCache {
  private readonly entries = new Map<string, StoredRecord | null>();
  private readonly dataVersion: Database.Statement<[], number>;
  private version = -1;
  private checkedAt = -Infinity;
  private checkedWrites = -1;

  constructor(db: Database.Database) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /** Drops every entry when another connection committed since the last check. */
  check(): void {
    const now = performance.now();
    if (this.checkedWrites === writes && now - this.checkedAt < CHECK_HOLDS) return;
    const version = this.dataVersion.get()!;
    if (version !== this.version) {
      this.entries.clear();
      this.version = version;
    }
    this.checkedAt = now;
    this.checkedWrites = writes;
  }

  /** Records a write of a record by this connection: the others of this process check again. */
  wrote(key: string, record: StoredRecord | null): void {
    writes += 1;
    this.checkedWrites = writes;
    this.set(key, record);
  }

  get(key: string): StoredRecord | null | undefined {
    return this.entries.get(key);
  }

  set(key: string, record: StoredRecord | null): void {
    if (this.entries.size >= CACHED) this.entries.clear();
    this.entries.set(key, record);
  }
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
