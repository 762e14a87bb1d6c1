export { createRuntime, Runtime, type TaskRequest } from './runtime/runtime.js';
export type { RuntimeOptions } from './runtime/options.js';
export {
  defineTask,
  isTaskName,
  type PayloadOf,
  type TaskContext,
  type TaskDefinition,
} from './runtime/define-task.js';
export type { Backoff } from './runtime/retry-policy.js';
export type { RuntimeEvents, RuntimeEventName } from './runtime/events.js';
export type { Schedule, ScheduleOptions, Schedules, StoredRule } from './runtime/schedules.js';
export type { CatchUp, CronRule, IntervalRule, ScheduleRule } from './runtime/schedule-rule.js';
export { memoryStore, MemoryStore } from './store/memory.js';
export {
  DEFAULT_DATABASE_URL,
  openStore,
  parseStoreUrl,
  redactUrl,
  type OpenStoreOptions,
  type StoreUrl,
} from './store/open.js';
export type { NewRecord, RecordQuery, Store, StoredRecord } from './store/store.js';
export type {
  AppendedFeedEntry,
  FeedEntry,
  FeedQuery,
  FeedRange,
  NewFeedEntry,
} from './store/feeds.js';
export * from './errors/index.js';
export { encodeJson, MAX_JSON_DEPTH, MAX_PROGRESS_LENGTH } from './json.js';
export { closestName } from './options-check.js';
export { SECOND, MINUTE, HOUR, DAY, systemClock, type Clock } from './time.js';
export { iso, taskView, type TaskView } from './task-view.js';
export {
  TASK_STATES,
  type EnqueueOptions,
  type GroupOptions,
  type PausedName,
  type SqlClient,
  type Json,
  type ListFilter,
  type Logger,
  type Task,
  type TaskError,
  type TaskGroup,
  type TaskPage,
  type TaskState,
  type TaskStats,
} from './types.js';
