export { createRuntime, Runtime, type TaskRequest } from './runtime/runtime.js';
export type { RuntimeOptions } from './runtime/options.js';
export { defineTask, type TaskContext, type TaskDefinition } from './runtime/define-task.js';
export type { Backoff } from './runtime/retry-policy.js';
export type { RuntimeEvents, RuntimeEventName } from './runtime/events.js';
export { memoryStore, MemoryStore } from './store/memory.js';
export { sqliteStore, SqliteStore } from './store/sqlite/index.js';
export { postgresStore, PostgresStore, type PostgresStoreOptions } from './store/postgres/index.js';
export { openStore, type OpenStoreOptions } from './store/open.js';
export type { Store } from './store/store.js';
export * from './errors/index.js';
export { InvalidPayloadError } from './json.js';
export { InvalidOptionError } from './options-check.js';
export { SECOND, MINUTE, HOUR, DAY, type Clock } from './time.js';
export {
  TASK_STATES,
  type EnqueueOptions,
  type SqlClient,
  type Json,
  type ListFilter,
  type Logger,
  type Task,
  type TaskError,
  type TaskPage,
  type TaskState,
} from './types.js';
