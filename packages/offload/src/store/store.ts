import { decodePayload } from '../json.js';
import { InvalidOptionError } from '../options-check.js';
import type { FeedOperations } from './feeds.js';
import type {
  ListFilter,
  SqlClient,
  Task,
  TaskError,
  TaskGroup,
  TaskPage,
  TaskState,
} from '../types.js';

export type { SqlClient };

/**
 * Where tasks live. `memory`, `sqlite` and `postgres` implement this one interface and pass one
 * conformance suite (test/store/conformance/); all SQL lives behind it. Times are epoch
 * milliseconds taken from the runtime's clock, so tests control them.
 */
export interface Store extends FeedOperations {
  /** `memory`, `sqlite` or `postgres`: for logs and metrics, never for branching. */
  readonly kind: string;

  /** Creates or migrates what the store needs. Idempotent; every other call may assume it ran. */
  open(): Promise<void>;
  /** Releases connections and files. Idempotent. */
  close(): Promise<void>;
  /** Throws when the store cannot be reached (for readiness checks). */
  ping(): Promise<void>;

  /**
   * Announces a process that will claim tasks as `owner`, so that others can tell when it is
   * gone. A store that can see a dead owner at once (SQLite, through a file lock) rescues its
   * tasks without waiting for their leases to expire.
   */
  registerWorker(owner: string): Promise<void>;
  unregisterWorker(owner: string): Promise<void>;

  /**
   * Adds tasks in one transaction; a task whose `key` is already stored returns that task. With
   * `transaction` (PostgreSQL only: a client inside the caller's open transaction), the tasks are
   * written on that connection and exist only if and when the caller commits.
   */
  enqueue(tasks: readonly NewTask[], transaction?: SqlClient): Promise<EnqueueResult[]>;

  /**
   * Calls `listener` when other processes may have added due tasks, so that runners need not
   * wait for their next poll. Only stores shared by several processes have it (PostgreSQL).
   */
  watch?(listener: () => void): Promise<void>;

  /**
   * Moves up to `limit` due queued tasks with one of `names` to `running` for `owner`: highest
   * priority first, then earliest `runAt`, then oldest. Each claim counts an attempt, sets
   * `startedAt` and a fresh lease token.
   *
   * Names that are paused are skipped. A task with a group is taken only while its key allows:
   * fewer than `concurrency` of the key's tasks running (across every process), a start left in
   * its `rate`, and the key not throttled; the limits of the key's next task apply. The key's own
   * tasks go in claim order; across keys, and between grouped and other tasks, a store may take
   * them in another order, so that a blocked key never holds up the rest of the batch.
   */
  claim(request: ClaimRequest): Promise<ClaimedTask[]>;

  /**
   * Records the outcome of attempts, in one transaction. An outcome applies only while the task is
   * still `running` under the same lease token (fencing); the result says, per settlement, whether
   * it applied.
   */
  settle(settlements: readonly Settlement[]): Promise<boolean[]>;

  /** Extends the leases still held; returns the ids of the tasks whose lease was lost. */
  renew(leases: readonly Lease[], expiresAt: number): Promise<string[]>;

  /**
   * Records how far running tasks got, in one transaction, fenced as `renew` is: an update
   * applies only while its task is `running` under the same lease token. Returns the ids of the
   * tasks whose lease was lost (nothing is written for them). A task given twice takes the last.
   */
  progress(updates: readonly ProgressUpdate[]): Promise<string[]>;

  /**
   * Hands back running tasks whose owner is gone or whose lease expired before `now`: `queued`
   * again, or `failed` when no attempt is left. The interrupted attempt stays counted.
   */
  rescue(now: number): Promise<Rescue[]>;

  get(id: string): Promise<Task | null>;
  /** Newest first, with cursor pagination. `limit` is already validated (1 to 1000). */
  list(filter: ListFilter & { limit: number }): Promise<TaskPage>;

  /** `queued` or `running` → `canceled`. Returns the task, or null when the id is unknown. */
  cancel(id: string, now: number): Promise<Change | null>;
  /** `failed` or `canceled` → `queued` now, granting one more attempt if none is left. */
  retry(id: string, now: number): Promise<Change | null>;

  /** Deletes up to `limit` finished tasks that finished before `before`; returns how many. */
  prune(before: number, limit: number): Promise<number>;

  /** How many tasks there are per name and state, and when the oldest due queued task was due. */
  stats(now: number): Promise<StoreStats>;

  // Schedules: named rules that enqueue a task at due times (see store/schedules.ts). The runtime
  // reads their rule and options; a store keeps them as JSON text and never interprets them.

  /**
   * Creates the schedule `name`, or replaces its rule, task, payload and options. A replacement
   * keeps `nextRunAt` when `rule` is unchanged (so a deploy that sets its schedules again moves
   * nothing), takes `schedule.nextRunAt` when it changed, and keeps a paused schedule paused.
   */
  setSchedule(schedule: NewSchedule, now: number): Promise<StoredSchedule>;
  getSchedule(name: string): Promise<StoredSchedule | null>;
  /** Every schedule, by name. */
  listSchedules(): Promise<StoredSchedule[]>;
  /** Stops firing: `paused`, `nextRunAt` null. Null when the name is unknown. */
  pauseSchedule(name: string, now: number): Promise<StoredSchedule | null>;
  /**
   * Fires again from `next(schedule)` on, computed inside the write so that a rule replaced
   * meanwhile cannot be resumed with the old rule's time. A schedule that is not paused is
   * returned unchanged; null when the name is unknown.
   */
  resumeSchedule(
    name: string,
    now: number,
    next: (schedule: StoredSchedule) => number | null,
  ): Promise<StoredSchedule | null>;
  /** Deletes the schedule; false when the name is unknown. Tasks it fired stay. */
  removeSchedule(name: string): Promise<boolean>;
  /**
   * Fires up to `limit` schedules that are not paused and due by `now`, earliest first, in one
   * transaction with the tasks they enqueue, so that a due time fires once however many processes
   * call this at once: a schedule another call is firing is skipped (PostgreSQL), or read again as
   * that call left it (SQLite, whose write transactions take turns). `plan` (which must not throw)
   * says, per schedule, what to enqueue and when it is due next; the tasks carry keys, so a task
   * already stored under its key is returned rather than stored twice.
   */
  fireSchedules(request: FireRequest): Promise<FireResult>;

  /** Stops claiming tasks of `name` until `resume`; false when it was paused already. */
  pause(name: string, now: number): Promise<boolean>;
  /** Claims tasks of `name` again; false when it was not paused. */
  resume(name: string): Promise<boolean>;
  /** The paused names, in name order. */
  paused(): Promise<PausedName[]>;
  /** Claims no task of the group `key` before `until` (a later throttle of the key stays). */
  throttle(key: string, until: number): Promise<void>;

  // Records: small JSON documents by collection and id, for what is built on the store (the
  // notification service keeps templates, recipients and suppressions in them). A store keeps the
  // value as JSON text and never interprets it; see store/records.ts for the rules on names.

  /**
   * Creates the record, or replaces its value. The revision counts the writes: 1 for a new
   * record, one more than the stored one for a replacement, given out inside the write, so that
   * writers at once each get a revision of their own.
   */
  putRecord(record: NewRecord, now: number): Promise<StoredRecord>;
  /** The records of `collection` with these ids, in the order of `ids`; unknown ids are left out. */
  getRecords(collection: string, ids: readonly string[]): Promise<StoredRecord[]>;
  /**
   * A page of the records of `collection` by id (code point order; `descending` for the
   * reverse), only those whose id starts with `prefix` when given, after the id `after`
   * (exclusive) when given. `limit` is already validated (1 to 1000).
   */
  listRecords(collection: string, query: RecordQuery): Promise<StoredRecord[]>;
  /** Deletes the record; false when there was none. */
  deleteRecord(collection: string, id: string): Promise<boolean>;
}

export interface PausedName {
  name: string;
  pausedAt: number;
}

export interface NewRecord {
  collection: string;
  id: string;
  /** JSON text. */
  value: string;
}

export interface StoredRecord extends NewRecord {
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export interface RecordQuery {
  prefix?: string;
  after?: string;
  descending?: boolean;
  limit: number;
}

export interface NewTask {
  name: string;
  /** The payload, already encoded as JSON text. */
  payload: string;
  priority: number;
  maxAttempts: number;
  timeout: number | null;
  key: string | null;
  group: TaskGroup | null;
  runAt: number;
  createdAt: number;
  /** The W3C `traceparent` of the enqueue's span, or null; stored as it is and read back. */
  trace: string | null;
}

export interface EnqueueResult {
  task: Task;
  /** False when a task with the same key was already stored and is returned instead. */
  created: boolean;
}

export interface ClaimRequest {
  owner: string;
  names: readonly string[];
  limit: number;
  now: number;
  leaseExpiresAt: number;
}

export interface Lease {
  id: string;
  /** The fencing token handed out by `claim`. */
  lease: number;
}

/**
 * A claimed task. Its `progress` is null whatever an earlier attempt reported: the claim does not
 * read it back (claims are the hot path, and the attempt reports its own). Its `trace` is read
 * back: the attempt's span continues it.
 */
export interface ClaimedTask extends Task, Lease {
  /** Set when the stored payload could not be read; the task cannot run. */
  payloadError: string | null;
}

export interface ProgressUpdate extends Lease {
  /** How far the task got, as JSON text. */
  progress: string;
}

export interface Settlement extends Lease {
  /** `queued` means: run again at `runAt`. */
  state: 'succeeded' | 'queued' | 'failed';
  at: number;
  /** For `queued`: when to run again. */
  runAt?: number;
  /** Appended to the task's errors. */
  error?: TaskError;
  /** Give the attempt back: a hand-back on shutdown or a RetryLaterError does not count. */
  refund?: boolean;
  /** For `succeeded`: what `run` returned, as JSON text; absent when it returned nothing. */
  result?: string;
  /**
   * The attempt's latest progress, as JSON text, written with the outcome (a separate write could
   * land after it and be refused by the fence); absent when the attempt reported none, which
   * keeps what is stored.
   */
  progress?: string;
}

export interface Rescue {
  task: Task;
  /** What the dead run's owner was. */
  owner: string | null;
}

export interface Change {
  task: Task;
  /** False when the task's state did not allow the change; `task` is then unchanged. */
  changed: boolean;
}

export interface StoreStats {
  counts: { name: string; state: TaskState; count: number }[];
  /** `runAt` of the oldest queued task that is due, or null when none is. */
  oldestDue: number | null;
}

/** A schedule as the stores keep it; times are epoch milliseconds. */
export interface StoredSchedule {
  name: string;
  /** JSON text, as the runtime wrote it: when the schedule fires. */
  rule: string;
  /** The name of the task it enqueues. */
  task: string;
  /** The payload of the tasks it enqueues, as JSON text. */
  payload: string;
  /** JSON text, as the runtime wrote it: the tasks' options and the catch-up policy. */
  options: string;
  paused: boolean;
  /** When it is due next; null while paused. */
  nextRunAt: number | null;
  /** The due time of the latest task it fired. */
  lastRunAt: number | null;
  /** The latest task it fired. */
  lastTaskId: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewSchedule {
  name: string;
  rule: string;
  task: string;
  payload: string;
  options: string;
  /** Its first due time, used unless a stored schedule of that name has the same rule. */
  nextRunAt: number;
}

/** What one firing of a schedule enqueues, and when the schedule is due next. */
export interface FirePlan {
  /** Each with a key (see `scheduleTaskKey`), in due order; may be empty (all skipped). */
  tasks: NewTask[];
  /** The due time of the last of `tasks`, or null when it fires none. */
  lastRunAt: number | null;
  /** Null: the rule has no later time; the schedule stays, but fires no more. */
  nextRunAt: number | null;
}

export interface FireRequest {
  now: number;
  limit: number;
  /** Called inside the transaction, once per due schedule. */
  plan(schedule: StoredSchedule): FirePlan;
}

export interface FiredSchedule {
  /** The schedule as the firing left it. */
  schedule: StoredSchedule;
  /** What enqueueing `plan.tasks` gave, in their order. */
  results: EnqueueResult[];
}

export interface FireResult {
  fired: FiredSchedule[];
  /** The earliest `nextRunAt` of the schedules that are not paused, after this firing. */
  nextRunAt: number | null;
}

/**
 * The de-duplication key of the task a schedule fires for a due time: a second guard, after the
 * schedule's own row, against firing one due time twice.
 */
export function scheduleTaskKey(name: string, dueAt: number): string {
  return `schedule:${name}:${dueAt}`;
}

/** Errors kept per task; older ones are dropped. */
export const MAX_ERRORS_KEPT = 10;
/** Stack traces are cut to this many characters before they are stored. */
export const MAX_STACK_LENGTH = 4000;
/** Error messages are cut to this many characters before they are stored. */
export const MAX_MESSAGE_LENGTH = 4000;

/** The error a rescue records on a task whose run was interrupted by its process going away. */
export function interruptedError(attempt: number, at: number, owner: string | null): TaskError {
  return {
    attempt,
    at: new Date(at),
    name: 'TaskInterruptedError',
    message: `attempt ${attempt} was interrupted: its process (${owner ?? 'unknown'}) stopped or lost its lease before the task finished`,
    stack: null,
  };
}

/** What `enqueue` with a transaction throws on a store that has no connections to share. */
export function transactionsUnsupported(kind: string): Error {
  return new InvalidOptionError(
    'enqueue options.transaction',
    `is for the postgres store; the ${kind} store writes through its own connection (enqueue without it)`,
  );
}

/** The task a durable store just inserted from `input`, under `id`: the rest are defaults. */
export function insertedTask(id: string, input: NewTask): Task {
  return {
    id,
    name: input.name,
    payload: decodePayload(input.payload).payload as Task['payload'],
    state: 'queued',
    priority: input.priority,
    attempts: 0,
    maxAttempts: input.maxAttempts,
    timeout: input.timeout,
    key: input.key,
    group: input.group,
    runAt: new Date(input.runAt),
    createdAt: new Date(input.createdAt),
    startedAt: null,
    finishedAt: null,
    errors: [],
    result: null,
    progress: null,
    trace: input.trace,
  };
}
