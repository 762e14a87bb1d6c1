import {
  describe,
  integerOption,
  InvalidOptionError,
  rejectUnknownKeys,
} from '../options-check.js';
import { TASK_STATES, type ListFilter, type SqlClient } from '../types.js';
import { isStorableText, isTaskName, type TaskDefinition } from './define-task.js';

/** Checks a `list` filter, naming the field that is wrong; returns its limit (default 50). */
export function checkListFilter(filter: ListFilter): number {
  rejectUnknownKeys('list filter', filter, ['state', 'name', 'keyPrefix', 'limit', 'cursor']);
  const limit = integerOption('list filter.limit', filter.limit ?? 50, 1, 1000);
  const { keyPrefix, name } = filter;
  if (
    keyPrefix !== undefined &&
    (typeof keyPrefix !== 'string' || keyPrefix.length === 0 || !isStorableText(keyPrefix))
  ) {
    throw new InvalidOptionError(
      'list filter.keyPrefix',
      'must be a non-empty string without NUL or unpaired surrogates',
    );
  }
  if (name !== undefined && !isTaskName(name)) {
    throw new InvalidOptionError(
      'list filter.name',
      `must be a task name, got ${JSON.stringify(name)}`,
    );
  }
  if (filter.state !== undefined && !TASK_STATES.includes(filter.state)) {
    throw new InvalidOptionError('list filter.state', `must be one of ${TASK_STATES.join(', ')}`);
  }
  return limit;
}

/**
 * The definition of the task to enqueue among `given` (the runtime's), or undefined for a name
 * none of them has. A definition that is not among them is refused (see `Runtime.enqueue`); an
 * object without a task name is left to `newTask`, which says what is wrong with it.
 */
export function givenDefinition(
  task: TaskDefinition<never> | string,
  given: ReadonlyMap<string, TaskDefinition<unknown>>,
): TaskDefinition<never> | undefined {
  if (typeof task === 'string') return given.get(task);
  if (typeof task !== 'object' || task === null) {
    throw new InvalidOptionError(
      'enqueue task',
      `must be a defineTask(...) definition, or the name of one, got ${typeof task === 'function' ? 'a function' : describe(task)}: define the task once with defineTask({ name, run }), give it to createRuntime({ tasks }), and enqueue that definition`,
    );
  }
  const name = (task as { name?: unknown }).name;
  const definition = typeof name === 'string' ? given.get(name) : undefined;
  // The hot path: the definition given to this runtime, found by its name without checking it.
  if (definition === task) return task;
  if (!isTaskName(name)) return undefined;
  throw new InvalidOptionError(
    'enqueue task',
    definition === undefined
      ? `the definition of ${JSON.stringify(name)} was not given to this runtime, so it would not run here; add it to createRuntime({ tasks }), or enqueue it by name (${JSON.stringify(name)}) if another process runs it`
      : `two definitions are named ${JSON.stringify(name)}; enqueue the one given to createRuntime({ tasks })`,
  );
}

/** Checks that `enqueueMany` was given an array. */
export function checkRequests(requests: unknown): void {
  if (!Array.isArray(requests)) {
    throw new InvalidOptionError(
      'enqueueMany requests',
      'must be an array of { task, payload, options }',
    );
  }
}

/** Checks one request of `enqueueMany`, the `index`th. */
export function checkRequest(request: unknown, index: number): void {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidOptionError(
      `enqueueMany requests[${index}]`,
      'must be an object { task, payload, options }',
    );
  }
}

/** Checks the `transaction` option of an enqueue: a node-postgres client. */
export function checkTransaction(transaction: unknown): SqlClient {
  if (
    transaction === null ||
    typeof transaction !== 'object' ||
    typeof (transaction as SqlClient).query !== 'function'
  ) {
    throw new InvalidOptionError(
      'enqueue options.transaction',
      "must be a node-postgres client inside your open transaction (e.g. from `await pool.connect()` after `client.query('BEGIN')`)",
    );
  }
  return transaction as SqlClient;
}
