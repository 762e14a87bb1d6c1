import { integerOption, InvalidOptionError, rejectUnknownKeys } from '../options-check.js';
import { TASK_STATES, type ListFilter, type SqlClient } from '../types.js';
import { isStorableText, isTaskName } from './define-task.js';

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
