import { MAX_ERRORS_KEPT } from '../store/store.js';
import { quoteIdentifier } from './migrations.js';
import { CLAIMED_COLUMNS, TASK_COLUMNS } from './rows.js';

const FINISHED = `('succeeded', 'failed', 'canceled')`;

/** Every statement the store runs, for one schema. Parameters are numbered as each one says. */
export interface Sql {
  /** $1 names, $2 payloads, $3 priorities, $4 max attempts, $5 timeouts, $6 keys, $7 run at, $8 created at, $9 group keys, $10 group concurrencies, $11 rate maxima, $12 rate periods, $13 traces. Returns the ids and keys created. */
  enqueue: string;
  /** $1 keys. */
  byKeys: string;
  /** $1 id. */
  byId: string;
  /** $1 now, $2 names, $3 limit, $4 owner, $5 lease expiry, $6 the group key taken from last. */
  claim: string;
  /** $1 ids, $2 leases, $3 states, $4 refunds, $5 run at, $6 finished at, $7 errors, $8 results, $9 progress (null keeps it). Returns the ids settled. */
  settle: string;
  /** As `settle`, returning the tasks. */
  settleReturning: string;
  /** $1 ids, $2 leases, $3 expiry. Returns the ids renewed. */
  renew: string;
  /** $1 ids, $2 leases, $3 progress. Returns the ids written. */
  progress: string;
  /** $1 lock class. The owners of running tasks whose liveness lock no session holds. */
  unlockedOwners: string;
  /**
   * $1 now, $2 lock class, $3 owners taken for gone. Locks and returns the running tasks to hand
   * back.
   */
  rescuable: string;
  /** $1 lock key. True when this transaction may do the maintenance, false when another does. */
  maintenanceLock: string;
  /** $1 below, $2 name, $3 limit; then $4 state or $4 from, $5 to, $6 state. */
  list: string;
  listFinished: string;
  listQueued: string;
  listRunning: string;
  /** $4 from, $5 to (null: no upper bound, for a prefix of U+10FFFF only), $6 state or null. */
  listByKey: string;
  listByKeyUnbounded: string;
  /** $1 id, $2 now. */
  cancel: string;
  retry: string;
  /** $1 before, $2 limit. */
  prune: string;
  /** The tasks by state and name: one query per state, each answered by its index alone. */
  counts: string;
  /** `counts`, with plans that read the indexes alone: several statements, the last one counts. */
  countsFromIndexes: string;
  /** $1 now. */
  oldestDue: string;
  /** $1 name, $2 now. Returns a row when the name was not paused yet. */
  pause: string;
  /** $1 name. Returns a row when the name was paused. */
  resume: string;
  paused: string;
  /** $1 key, $2 until. */
  throttle: string;
}

/** Queued tasks without a group: the WHERE of tasks_claim (schema 4). */
const UNGROUPED = `state = 'queued' AND group_key IS NULL`;

/**
 * The distinct priorities of queued tasks without a group, as a table `priorities`: a skip-scan
 * of the claim index, one seek per priority (highest first), however many tasks each holds.
 */
function queuedPriorities(tasks: string): string {
  return `WITH RECURSIVE priorities (priority) AS (
    (SELECT priority FROM ${tasks} WHERE ${UNGROUPED} ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT t.priority FROM ${tasks} t
            WHERE t.state = 'queued' AND t.group_key IS NULL AND t.priority < p.priority
            ORDER BY t.priority DESC LIMIT 1)
    FROM priorities p WHERE p.priority IS NOT NULL)`;
}

/**
 * The liveness locks of this schema (first key `lockClass`, second `hashtext(owner)`) that some
 * session of this database holds, as a table `live` of their second keys.
 */
function liveOwners(lockClass: string): string {
  return `WITH live AS MATERIALIZED (
        SELECT l.objid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = (${lockClass}::bigint & 4294967295)::oid)`;
}

/** The task's owner is in no row of `live`. */
const UNLOCKED = `(hashtext(lease_owner)::bigint & 4294967295)::oid NOT IN (SELECT objid FROM live)`;

export function buildSql(schema: string): Sql {
  const tasks = `${quoteIdentifier(schema)}.tasks`;
  const groups = `${quoteIdentifier(schema)}.groups`;
  const paused = `${quoteIdentifier(schema)}.paused`;
  const columnsOf = (alias: string, columns = TASK_COLUMNS) =>
    columns
      .split(', ')
      .map((column) => `${alias}.${column}`)
      .join(', ');
  const claimedOf = (alias: string) => columnsOf(alias, CLAIMED_COLUMNS);
  const OF_NAME = `($2::text IS NULL OR name = $2)`;
  const counts = `SELECT name, 'queued' AS state, count(*)::integer AS count FROM ${tasks}
      WHERE ${UNGROUPED} GROUP BY name
    UNION ALL SELECT name, 'queued', count(*)::integer FROM ${tasks}
      WHERE state = 'queued' AND group_key IS NOT NULL GROUP BY name
    UNION ALL SELECT name, 'running', count(*)::integer FROM ${tasks}
      WHERE state = 'running' GROUP BY name
    UNION ALL SELECT name, state, count(*)::integer FROM ${tasks}
      WHERE state IN ${FINISHED} GROUP BY state, name`;
  const endAttempts = (returning: string) => `UPDATE ${tasks} t SET
      state = u.state,
      attempts = t.attempts - u.refund,
      run_at = coalesce(u.run_at, t.run_at),
      finished_at = u.finished_at,
      result = u.result,
      progress = coalesce(u.progress, t.progress),
      lease_owner = NULL,
      lease_expires_at = NULL,
      errors = CASE WHEN u.error IS NULL THEN t.errors ELSE
        (CASE WHEN jsonb_array_length(t.errors) >= ${MAX_ERRORS_KEPT} THEN t.errors - 0 ELSE t.errors END)
        || jsonb_build_array(u.error::jsonb) END
    FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::integer[], $5::bigint[], $6::bigint[],
                $7::text[], $8::text[], $9::text[])
      AS u (id, lease, state, refund, run_at, finished_at, error, result, progress)
    WHERE t.id = u.id AND t.state = 'running' AND t.lease = u.lease
    RETURNING ${returning}`;
  const listBy = (where: string) =>
    `SELECT ${TASK_COLUMNS} FROM ${tasks}
     WHERE ${where} AND id < $1 AND ${OF_NAME} ORDER BY id DESC LIMIT $3`;
  return {
    // Ids follow the rows' order (ORDER BY ord): the store sorts what RETURNING gives by id to
    // line the created tasks up with the request. Only ids and keys come back: the store has the
    // rest, and reading whole rows back took a third of the statement's time.
    enqueue: `INSERT INTO ${tasks}
        (name, payload, state, priority, max_attempts, timeout_ms, key, run_at, created_at,
         group_key, group_concurrency, group_rate_max, group_rate_period, trace)
      SELECT name, payload, 'queued', priority, max_attempts, timeout_ms, key, run_at, created_at,
             group_key, group_concurrency, group_rate_max, group_rate_period, trace
      FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[], $5::integer[], $6::text[],
                  $7::bigint[], $8::bigint[], $9::text[], $10::integer[], $11::integer[],
                  $12::integer[], $13::text[]) WITH ORDINALITY
        AS u (name, payload, priority, max_attempts, timeout_ms, key, run_at, created_at,
              group_key, group_concurrency, group_rate_max, group_rate_period, trace, ord)
      ORDER BY ord
      ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING
      RETURNING id, key`,
    byKeys: `SELECT ${TASK_COLUMNS} FROM ${tasks} WHERE key = ANY($1::text[])`,
    byId: `SELECT ${TASK_COLUMNS} FROM ${tasks} WHERE id = $1`,

    // Names paused are left out; tasks with a group are taken first, as their keys allow (see
    // claim_grouped, schema 4), and the batch is filled with the others: per priority, highest
    // first, the first due tasks in (run_at, id) order; locked rows are someone else's claim in
    // flight and are skipped, not waited for.
    // The claim commits without waiting for the WAL flush (synchronous_commit off for this
    // transaction only): a claim lost in a server crash only puts its tasks back in the queue to
    // run again, as a crash does anyway, and the settle that ends the attempt (a synchronous
    // commit) flushes the claim before it. This halves the time of a claim (BENCHMARKS.md).
    claim: `${queuedPriorities(tasks)},
      active AS MATERIALIZED (
        SELECT array(SELECT unnest($2::text[]) EXCEPT SELECT name FROM ${paused}) AS names),
      grouped AS MATERIALIZED (
        SELECT ${claimedOf('g')}
        FROM (SELECT names FROM active WHERE cardinality(names) > 0 AND EXISTS (
                SELECT 1 FROM ${tasks}
                WHERE state = 'queued' AND group_key IS NOT NULL AND run_at <= $1)) a,
          ${quoteIdentifier(schema)}.claim_grouped($1, a.names, $3, $4, $5, $6) g),
      left_over AS (SELECT $3 - count(*) AS n FROM grouped),
      picked AS (
        SELECT due.id FROM priorities p CROSS JOIN LATERAL (
          SELECT id FROM ${tasks}
          WHERE ${UNGROUPED} AND priority = p.priority AND run_at <= $1
            AND name = ANY((SELECT names FROM active)::text[])
          ORDER BY run_at, id
          LIMIT (SELECT n FROM left_over)
          FOR UPDATE SKIP LOCKED) due
        WHERE p.priority IS NOT NULL
        LIMIT (SELECT n FROM left_over)),
      relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS setting),
      -- By id through the primary key: joined to picked, whose size the planner cannot know, the
      -- update would hash a sequential scan of the whole table.
      claimed AS (
        UPDATE ${tasks} t
        SET state = 'running', attempts = t.attempts + 1, started_at = $1, lease_owner = $4,
            lease = t.lease + 1, lease_expires_at = $5
        FROM relaxed WHERE t.id = ANY(ARRAY(SELECT id FROM picked))
        RETURNING ${claimedOf('t')})
      SELECT * FROM grouped UNION ALL SELECT * FROM claimed`,

    settle: endAttempts('t.id'),
    settleReturning: endAttempts(columnsOf('t')),
    renew: `UPDATE ${tasks} t SET lease_expires_at = $3
      FROM unnest($1::bigint[], $2::integer[]) AS u (id, lease)
      WHERE t.id = u.id AND t.state = 'running' AND t.lease = u.lease
      RETURNING t.id`,
    progress: `UPDATE ${tasks} t SET progress = u.progress
      FROM unnest($1::bigint[], $2::integer[], $3::text[]) AS u (id, lease, progress)
      WHERE t.id = u.id AND t.state = 'running' AND t.lease = u.lease
      RETURNING t.id`,

    // Owners whose session ended: the process died, or lost its connection and may be coming back.
    unlockedOwners: `${liveOwners('$1')}
      SELECT DISTINCT lease_owner AS owner FROM ${tasks}
      WHERE state = 'running' AND ${UNLOCKED}`,
    // Running tasks whose lease expired, or whose owner was taken for gone and still holds no
    // liveness lock (it did not come back since).
    rescuable: `${liveOwners('$2')}
      SELECT ${TASK_COLUMNS} FROM ${tasks}
      WHERE state = 'running' AND (lease_expires_at < $1
        OR (lease_owner = ANY($3::text[]) AND ${UNLOCKED}))
      FOR UPDATE SKIP LOCKED`,
    maintenanceLock: `SELECT pg_try_advisory_xact_lock($1, 1) AS locked`,

    list: listBy('true'),
    listFinished: listBy(`state IN ${FINISHED} AND state = $4`),
    listQueued: listBy(`state = 'queued'`),
    listRunning: listBy(`state = 'running'`),
    listByKey: listBy(`key >= $4 AND key < $5 AND ($6::text IS NULL OR state = $6)`),
    listByKeyUnbounded: listBy(
      `key >= $4 AND $5::text IS NULL AND ($6::text IS NULL OR state = $6)`,
    ),

    cancel: `UPDATE ${tasks}
      SET state = 'canceled', finished_at = $2, lease_owner = NULL, lease_expires_at = NULL
      WHERE id = $1 AND state IN ('queued', 'running') RETURNING ${TASK_COLUMNS}`,
    retry: `UPDATE ${tasks}
      SET state = 'queued', run_at = $2, finished_at = NULL,
          max_attempts = greatest(max_attempts, attempts + 1)
      WHERE id = $1 AND state IN ('failed', 'canceled') RETURNING ${TASK_COLUMNS}`,
    prune: `DELETE FROM ${tasks} WHERE id IN (
      SELECT id FROM ${tasks} WHERE state IN ${FINISHED} AND finished_at < $1 LIMIT $2)`,
    counts,
    // The counts read those indexes whatever the planner weighs: where payloads are small it may
    // find a scan of the table as cheap on a quiet server, but such a scan reads every payload and
    // grows with them. One query text is one transaction, so the settings end with it.
    countsFromIndexes: `SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;
      ${counts}`,
    oldestDue: `${queuedPriorities(tasks)}
      SELECT least(
        (SELECT min((SELECT min(run_at) FROM ${tasks}
                     WHERE ${UNGROUPED} AND priority = p.priority AND run_at <= $1))
         FROM priorities p WHERE p.priority IS NOT NULL),
        (SELECT min(run_at) FROM ${tasks}
         WHERE state = 'queued' AND group_key IS NOT NULL AND run_at <= $1)) AS at`,

    pause: `INSERT INTO ${paused} (name, paused_at) VALUES ($1, $2)
      ON CONFLICT (name) DO NOTHING RETURNING name`,
    resume: `DELETE FROM ${paused} WHERE name = $1 RETURNING name`,
    paused: `SELECT name, paused_at FROM ${paused} ORDER BY name COLLATE "C"`,
    throttle: `INSERT INTO ${groups} (key, throttled_until) VALUES ($1, $2)
      ON CONFLICT (key) DO UPDATE SET throttled_until = greatest(${groups}.throttled_until, $2)`,
  };
}
