import type Database from 'better-sqlite3';
import { keyAllows, nextStart, tatAfter, toGroup } from '../store/group-limits.js';
import type { ClaimRequest, PausedName } from '../store/store.js';
import { CLAIMED_COLUMNS, type ClaimedRow } from './rows.js';
import { GROUPED } from './statements.js';

type Statement<P extends unknown[] | object, R = unknown> = Database.Statement<P, R>;

/** The statements of groups and paused names (schema 7), prepared once per connection. */
export interface GroupStatements {
  /** Whether a queued task with a group is due at the given time: for the idle poll. */
  due: Statement<[number], number>;
  /** The run-at of the first task with a group to come due after the given time. */
  nextDue: Statement<[number], number | null>;
  /** Whether any key has a row (was ever throttled or rated): if not, none needs reading. */
  anyState: Statement<[], number>;
  /** The first key above the given one that has queued tasks: one seek. */
  nextKey: Statement<[string], string>;
  /** How many tasks of the key run. */
  running: Statement<[string], number>;
  /** The key's throttle and rate schedule, if it has a row. */
  state: Statement<[string], { throttled_until: number; rate_tat: number }>;
  /** Parameters: key, rate_tat. */
  setTat: Statement<[string, number]>;
  /** Parameters: key, until. */
  throttle: Statement<[string, number]>;
  pausedNames: Statement<[], string>;
  /** Parameters: name, paused_at. */
  pause: Statement<[string, number]>;
  resume: Statement<[string]>;
  paused: Statement<[], { name: string; paused_at: number }>;
  /** Claims the tasks of the given ids (a JSON array). Parameters: now, owner, expiry, ids. */
  take: Statement<[number, string, number, string], ClaimedRow>;
  /** Per number of names, the statements that read a key's due tasks. */
  ofKey: Map<number, KeyStatements>;
}

interface KeyStatements {
  /**
   * The limits and ids of the key's first due tasks of the names, in claim order. Parameters:
   * key, now, ...names, limit.
   */
  firsts: Statement<unknown[], Head>;
  /** The ids of the key's first due tasks. Parameters: key, now, ...names, limit. */
  ids: Statement<unknown[], number>;
  /** The keys of the oldest due tasks, one per task. Parameters: now, ...names, limit. */
  dueKeys: Statement<unknown[], string>;
}

/** How many of a key's due tasks a claim reads with their limits, before it knows how many it may take. */
const FIRSTS = 8;
/**
 * How many of the oldest due tasks' keys a claim reads, per task it may take, before it visits
 * the keys in turn instead.
 */
const DUE_KEYS_PER_TASK = 4;

type Head = [
  concurrency: number | null,
  rateMax: number | null,
  ratePeriod: number | null,
  id: number,
];

export function prepareGroupStatements(db: Database.Database): GroupStatements {
  return {
    due: db
      .prepare<[number], number>(
        `SELECT 1 FROM offload_tasks INDEXED BY offload_tasks_grouped_due
         WHERE ${GROUPED} AND run_at <= ? LIMIT 1`,
      )
      .pluck(),
    nextDue: db
      .prepare<[number], number | null>(
        `SELECT min(run_at) FROM offload_tasks INDEXED BY offload_tasks_grouped_due
         WHERE ${GROUPED} AND run_at > ?`,
      )
      .pluck(),
    anyState: db.prepare<[], number>(`SELECT 1 FROM offload_groups LIMIT 1`).pluck(),
    nextKey: db
      .prepare<[string], string>(
        `SELECT min(group_key) FROM offload_tasks INDEXED BY offload_tasks_grouped
         WHERE ${GROUPED} AND group_key > ?`,
      )
      .pluck(),
    running: db
      .prepare<[string], number>(
        `SELECT count(*) FROM offload_tasks INDEXED BY offload_tasks_group_running
         WHERE state = 'running' AND group_key IS NOT NULL AND group_key = ?`,
      )
      .pluck(),
    state: db.prepare(`SELECT throttled_until, rate_tat FROM offload_groups WHERE key = ?`),
    setTat: db.prepare(
      `INSERT INTO offload_groups (key, rate_tat) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET rate_tat = excluded.rate_tat`,
    ),
    throttle: db.prepare(
      `INSERT INTO offload_groups (key, throttled_until) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET throttled_until = max(throttled_until, excluded.throttled_until)`,
    ),
    pausedNames: db.prepare<[], string>(`SELECT name FROM offload_paused`).pluck(),
    pause: db.prepare(
      `INSERT INTO offload_paused (name, paused_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
    ),
    resume: db.prepare(`DELETE FROM offload_paused WHERE name = ?`),
    paused: db.prepare(`SELECT name, paused_at FROM offload_paused ORDER BY name`),
    take: db
      .prepare<[number, string, number, string], ClaimedRow>(
        `UPDATE offload_tasks
         SET state = 'running', attempts = attempts + 1, started_at = ?, lease_owner = ?,
             lease = lease + 1, lease_expires_at = ?
         WHERE id IN (SELECT value FROM json_each(?))
         RETURNING ${CLAIMED_COLUMNS}`,
      )
      .raw(true),
    ofKey: new Map(),
  };
}

export function prepareKeyStatements(db: Database.Database, count: number): KeyStatements {
  const names = Array.from({ length: count }, () => '?').join(', ');
  const due = `${GROUPED} AND group_key = ? AND run_at <= ? AND name IN (${names})`;
  return {
    firsts: db
      .prepare<unknown[], Head>(
        `SELECT group_concurrency, group_rate_max, group_rate_period, id
         FROM offload_tasks INDEXED BY offload_tasks_grouped
         WHERE ${due} ORDER BY priority DESC, run_at, id LIMIT CAST(? AS INTEGER)`,
      )
      .raw(true),
    dueKeys: db
      .prepare<unknown[], string>(
        `SELECT group_key FROM offload_tasks INDEXED BY offload_tasks_grouped_due
         WHERE ${GROUPED} AND run_at <= ? AND name IN (${names})
         ORDER BY run_at, id LIMIT CAST(? AS INTEGER)`,
      )
      .pluck(),
    ids: db
      .prepare<unknown[], number>(
        `SELECT id FROM offload_tasks INDEXED BY offload_tasks_grouped
         WHERE ${due} ORDER BY priority DESC, run_at, id LIMIT CAST(? AS INTEGER)`,
      )
      .pluck(),
  };
}

/** The claim's names without the paused ones. */
export function unpausedNames(statements: GroupStatements, names: readonly string[]): string[] {
  const paused = statements.pausedNames.all();
  return paused.length === 0 ? [...names] : names.filter((name) => !paused.includes(name));
}

/**
 * Takes up to `limit` due tasks with a group, inside the claim's IMMEDIATE transaction (no other
 * process claims meanwhile). Each key visited gives as many of its due tasks, in claim order, as
 * its limits allow. The keys of the oldest due tasks are visited first, from a bounded read of
 * them; when that read is used up with room left (the oldest tasks belong to blocked keys), the
 * keys that have queued tasks are visited in turn from the one after `after`, so that a blocked
 * key costs a few index seeks, whatever number of tasks it holds. Returns the last key visited
 * in turn, and the earliest time a key it found blocked could start a task without a write
 * (Infinity when only a task's end can unblock them).
 */
export function claimGrouped(
  db: Database.Database,
  statements: GroupStatements,
  throttled: ThrottledKeys,
  request: ClaimRequest,
  names: readonly string[],
  after: string,
  claimed: ClaimedRow[],
): { last: string; wake: number } {
  const { now, owner, leaseExpiresAt, limit } = request;
  let ofKey = statements.ofKey.get(names.length);
  if (!ofKey) statements.ofKey.set(names.length, (ofKey = prepareKeyStatements(db, names.length)));
  const statementsOfKey = ofKey;
  const anyState = statements.anyState.get() !== undefined;
  // The keys' tasks are picked first and taken with one statement at the end: nothing else
  // changes them meanwhile, inside the transaction.
  const ids: number[] = [];
  const visited = new Set<string>();
  const room = () => limit - claimed.length - ids.length;
  let wake = Infinity;

  const visit = (key: string): void => {
    visited.add(key);
    const throttledUntil = throttled.get(key, now);
    if (throttledUntil > 0) {
      wake = Math.min(wake, throttledUntil);
      return;
    }
    const firsts = statementsOfKey.firsts.all(key, now, ...names, Math.min(FIRSTS, limit));
    const head = firsts[0];
    if (head === undefined) return;
    const group = toGroup(key, head[0], head[1], head[2])!;
    const stored = anyState ? statements.state.get(key) : undefined;
    if (stored !== undefined && stored.throttled_until > now) {
      throttled.set(key, stored.throttled_until);
      wake = Math.min(wake, stored.throttled_until);
      return;
    }
    const state = {
      running: group.concurrency === null ? 0 : statements.running.get(key)!,
      tat: stored?.rate_tat ?? 0,
      throttledUntil: stored?.throttled_until ?? 0,
    };
    const allowed = keyAllows(group, state, now, room());
    if (allowed === 0) {
      if (group.rate !== null && (group.concurrency === null || state.running < group.concurrency))
        wake = Math.min(wake, nextStart(group.rate, state.tat));
      return;
    }
    const picked =
      allowed <= firsts.length || firsts.length < Math.min(FIRSTS, limit)
        ? firsts.slice(0, allowed).map((row) => row[3])
        : statementsOfKey.ids.all(key, now, ...names, allowed);
    for (const id of picked) ids.push(id);
    if (group.rate !== null)
      statements.setTat.run(key, tatAfter(group.rate, state.tat, now, picked.length));
  };

  const budget = DUE_KEYS_PER_TASK * limit;
  const oldest = ofKey.dueKeys.all(now, ...names, budget);
  for (const key of oldest) {
    if (room() <= 0) break;
    if (!visited.has(key)) visit(key);
  }
  let last = after;
  if (room() > 0 && oldest.length === budget) {
    let key = after;
    let wrapped = false;
    while (room() > 0) {
      const next = statements.nextKey.get(key) ?? null;
      if (next === null || (wrapped && next > after)) {
        if (wrapped || after === '') break;
        wrapped = true;
        key = '';
        continue;
      }
      key = next;
      last = key;
      if (!visited.has(key)) visit(key);
    }
  }
  if (ids.length > 0) {
    for (const row of statements.take.all(now, owner, leaseExpiresAt, JSON.stringify(ids)))
      claimed.push(row);
  }
  return { last, wake };
}

/**
 * The keys a claim found throttled, and until when, so that later claims pass them by without
 * reading them: a key's throttle only ever grows, so what was read stays true until then.
 */
export class ThrottledKeys {
  /** Past this many keys, the oldest entries are dropped. */
  private static readonly MAX = 10_000;
  private readonly until = new Map<string, number>();

  /** Until when the key is throttled, or 0 when it is not, as far as claims found. */
  get(key: string, now: number): number {
    const until = this.until.get(key);
    if (until === undefined) return 0;
    if (until > now) return until;
    this.until.delete(key);
    return 0;
  }

  set(key: string, until: number): void {
    if (this.until.size >= ThrottledKeys.MAX) this.until.delete(this.until.keys().next().value!);
    this.until.set(key, until);
  }
}

/** The paused names, as the store returns them. */
export function pausedNames(statements: GroupStatements): PausedName[] {
  return statements.paused.all().map((row) => ({ name: row.name, pausedAt: row.paused_at }));
}
