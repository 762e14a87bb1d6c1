import type Database from 'better-sqlite3';
import { OffloadError } from '../errors/offload-error.js';

/**
 * The schema, one numbered step per entry: entry `i` takes the database from version `i` to
 * `i + 1` (kept in `PRAGMA user_version`). Never edit a released step; add a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE offload_tasks (
    -- Without AUTOINCREMENT: its sqlite_sequence page would be one more page written by every
    -- commit (about a fifth of single-enqueue throughput). offload_id_floor keeps ids unique.
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER,
    key              TEXT,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    errors           TEXT    NOT NULL DEFAULT '[]',
    lease_owner      TEXT,
    lease            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER
  );

  -- De-duplication: one stored task per key, until it is pruned.
  CREATE UNIQUE INDEX offload_tasks_key ON offload_tasks (key) WHERE key IS NOT NULL;

  -- claim: walk due queued tasks in claim order.
  CREATE INDEX offload_tasks_claim ON offload_tasks (priority DESC, run_at, id)
    WHERE state = 'queued';

  -- rescue: expired leases, and the owners of running tasks.
  CREATE INDEX offload_tasks_running ON offload_tasks (lease_expires_at, lease_owner)
    WHERE state = 'running';

  -- Finished tasks, for list by a finished state (newest first) and for prune (finished_at is
  -- read from the index itself). One index for both: settling a task writes one page less. There
  -- is no index on name, nor on state for queued and running tasks: every index is one more page
  -- written by each enqueue.
  CREATE INDEX offload_tasks_done ON offload_tasks (state, id, finished_at)
    WHERE state IN ('succeeded', 'failed', 'canceled');

  -- The largest id prune ever deleted (one row). A new task takes an id above both it and every
  -- stored id, so an id is never reused, even once the newest tasks are pruned.
  CREATE TABLE offload_id_floor (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    id  INTEGER NOT NULL
  );
  INSERT INTO offload_id_floor (one, id) VALUES (1, 0);
  `,
  `
  -- What a task's run returned (JSON text), kept once it succeeded.
  ALTER TABLE offload_tasks ADD COLUMN result TEXT;
  `,
  `
  -- A constant IN list of three values or more makes SQLite build a temporary b-tree each time a
  -- statement evaluates it. The CHECK on state and the WHERE of offload_tasks_done did so on every
  -- insert and every change of state: about 4 µs of the 6 µs an insert took, and of the 8 µs a
  -- claim or a settle of one task took. The same rules, written with OR. SQLite cannot change a
  -- CHECK in place, so the table is built again; rows keep their ids, and rows written by hand in
  -- a state this code does not know are kept as they are (the service shows them as such).
  CREATE TABLE offload_tasks_new (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,
    state            TEXT    NOT NULL
                     CHECK (state = 'queued' OR state = 'running' OR state = 'succeeded'
                            OR state = 'failed' OR state = 'canceled'),
    priority         INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER,
    key              TEXT,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    errors           TEXT    NOT NULL DEFAULT '[]',
    lease_owner      TEXT,
    lease            INTEGER NOT NULL DEFAULT 0,
    lease_expires_at INTEGER,
    result           TEXT
  );
  PRAGMA ignore_check_constraints = ON;
  INSERT INTO offload_tasks_new SELECT
    id, name, payload, state, priority, attempts, max_attempts, timeout_ms, key, run_at,
    created_at, started_at, finished_at, errors, lease_owner, lease, lease_expires_at, result
  FROM offload_tasks;
  PRAGMA ignore_check_constraints = OFF;
  DROP TABLE offload_tasks;
  ALTER TABLE offload_tasks_new RENAME TO offload_tasks;

  CREATE UNIQUE INDEX offload_tasks_key ON offload_tasks (key) WHERE key IS NOT NULL;
  CREATE INDEX offload_tasks_claim ON offload_tasks (priority DESC, run_at, id)
    WHERE state = 'queued';
  CREATE INDEX offload_tasks_running ON offload_tasks (lease_expires_at, lease_owner)
    WHERE state = 'running';
  CREATE INDEX offload_tasks_done ON offload_tasks (state, id, finished_at)
    WHERE state = 'succeeded' OR state = 'failed' OR state = 'canceled';
  `,
  `
  -- The name in each index of a state, so that the counts by state and name (stats, read by every
  -- metrics scrape) come from the indexes alone: the table holds the payloads, which a count of
  -- the rows reads through page by page. An index of its own on (state, name) would cost every
  -- insert and every change of state one more index entry to write; a wider entry costs little.
  -- The claim then also picks its tasks, by name, from its index alone.
  DROP INDEX offload_tasks_claim;
  CREATE INDEX offload_tasks_claim ON offload_tasks (priority DESC, run_at, id, name)
    WHERE state = 'queued';
  DROP INDEX offload_tasks_running;
  CREATE INDEX offload_tasks_running ON offload_tasks (lease_expires_at, lease_owner, name)
    WHERE state = 'running';
  DROP INDEX offload_tasks_done;
  CREATE INDEX offload_tasks_done ON offload_tasks (state, id, finished_at, name)
    WHERE state = 'succeeded' OR state = 'failed' OR state = 'canceled';
  `,
  `
  -- How far a task got, as its run last reported (JSON text); kept once it finishes.
  ALTER TABLE offload_tasks ADD COLUMN progress TEXT;
  `,
  `
  -- Schedules: named rules that enqueue a task at due times. The runtime writes rule and options
  -- as JSON text and reads them back; the store never interprets them.
  CREATE TABLE offload_schedules (
    name         TEXT    PRIMARY KEY,
    rule         TEXT    NOT NULL,
    task         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    options      TEXT    NOT NULL,
    paused       INTEGER NOT NULL DEFAULT 0 CHECK (paused = 0 OR paused = 1),
    next_run_at  INTEGER,
    last_run_at  INTEGER,
    last_task_id TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- The firing loop: the earliest due time, and the due schedules in due order.
  CREATE INDEX offload_schedules_due ON offload_schedules (next_run_at)
    WHERE paused = 0 AND next_run_at IS NOT NULL;
  `,
  `
  -- Groups (docs/limits.md): the key a task counts in, and the limits it carries.
  ALTER TABLE offload_tasks ADD COLUMN group_key TEXT;
  ALTER TABLE offload_tasks ADD COLUMN group_concurrency INTEGER;
  ALTER TABLE offload_tasks ADD COLUMN group_rate_max INTEGER;
  ALTER TABLE offload_tasks ADD COLUMN group_rate_period INTEGER;

  -- The claim index holds the tasks without a group only: the claim of those stays one statement
  -- that never walks past a blocked key's tasks. Tasks with a group have an index by key, which
  -- the claim visits key by key, reading each key's next tasks and their limits from it alone;
  -- the running ones are counted per key from an index of their own (a count kept in a row could
  -- drift from the tasks). group_key, always null in the claim index,
  -- is in it for SQLite to read the claim's WHERE from the index alone (it does not take a column
  -- named in the index's own WHERE as known).
  DROP INDEX offload_tasks_claim;
  CREATE INDEX offload_tasks_claim ON offload_tasks (priority DESC, run_at, id, name, group_key)
    WHERE state = 'queued' AND group_key IS NULL;
  CREATE INDEX offload_tasks_grouped ON offload_tasks
    (group_key, priority DESC, run_at, id, name, group_concurrency, group_rate_max, group_rate_period)
    WHERE state = 'queued' AND group_key IS NOT NULL;
  CREATE INDEX offload_tasks_group_running ON offload_tasks (group_key)
    WHERE state = 'running' AND group_key IS NOT NULL;
  -- The due tasks with a group, oldest first: whether one is due, in one seek however many wait
  -- for a later run_at (retries of grouped tasks do), and which keys a claim visits first.
  CREATE INDEX offload_tasks_grouped_due ON offload_tasks (run_at, id, group_key, name)
    WHERE state = 'queued' AND group_key IS NOT NULL;

  -- Per key, only once it was throttled or started a task under a rate: until when it is
  -- throttled, and when its rate's next start is due (see store/group-limits.ts).
  CREATE TABLE offload_groups (
    key             TEXT    PRIMARY KEY,
    throttled_until INTEGER NOT NULL DEFAULT 0,
    rate_tat        REAL    NOT NULL DEFAULT 0
  ) WITHOUT ROWID;

  -- Task names whose tasks are not claimed.
  CREATE TABLE offload_paused (
    name      TEXT    PRIMARY KEY,
    paused_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  -- Records: small JSON documents by collection and id, for what is built on the store. The
  -- value is JSON text that the store never interprets; revision counts the writes.
  CREATE TABLE offload_records (
    collection TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)
  ) WITHOUT ROWID;
  `,
  `
  -- The W3C traceparent of the span that enqueued the task (docs/tracing.md), or null.
  ALTER TABLE offload_tasks ADD COLUMN trace TEXT;
  `,
  `
  -- Feeds: per-name append-only lists of JSON entries, numbered 1, 2, 3… per feed (last_seq is
  -- the number given out last); key is unique per feed, so a repeated append stores nothing.
  CREATE TABLE offload_feeds (
    feed     TEXT    NOT NULL PRIMARY KEY,
    last_seq INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE offload_feed_entries (
    feed       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER,
    PRIMARY KEY (feed, seq)
  ) WITHOUT ROWID;
  CREATE UNIQUE INDEX offload_feed_entries_key ON offload_feed_entries (feed, key);
  CREATE INDEX offload_feed_entries_unread ON offload_feed_entries (feed, seq)
    WHERE read_at IS NULL;
  `,
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to `SCHEMA_VERSION` in one IMMEDIATE transaction, so that processes opening
 * the same file at once migrate it exactly once. Refuses a database written by newer code.
 */
export function migrate(db: Database.Database, path: string): void {
  const run = db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new OffloadError(
        'STORE_SCHEMA_TOO_NEW',
        `the SQLite database ${path} has schema version ${current}, but this version of Offload only knows up to ${SCHEMA_VERSION}: it was written by a newer Offload. Upgrade Offload, or open another file`,
      );
    }
    for (let version = current; version < SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version]!);
    }
    if (current !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  run.immediate();
}
