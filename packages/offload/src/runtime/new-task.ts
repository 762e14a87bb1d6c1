import { encodePayload } from '../json.js';
import {
  durationOption,
  integerOption,
  InvalidOptionError,
  MAX_DURATION,
  rejectUnknownKeys,
} from '../options-check.js';
import type { NewTask } from '../store/store.js';
import type { EnqueueOptions } from '../types.js';
import {
  checkTaskName,
  isStorableText,
  MAX_ATTEMPTS_LIMIT,
  type TaskDefinition,
} from './define-task.js';
import { groupOf } from './groups.js';

const enqueueOptionKeys = [
  'delay',
  'runAt',
  'priority',
  'maxAttempts',
  'timeout',
  'key',
  'group',
  'traceparent',
];

/**
 * What one enqueue stores: options checked and merged over `definition`'s (the definition of
 * `task` this process has, if any), the payload encoded. Throws on bad input, so nothing bad is
 * stored.
 */
export function newTask(
  task: TaskDefinition<never> | string,
  definition: TaskDefinition<never> | undefined,
  payload: unknown,
  options: EnqueueOptions,
  defaults: { now: number; maxAttempts: number },
): NewTask {
  const name = typeof task === 'string' ? task : task?.name;
  // The name of a definition this process has was checked when the runtime was made: the notify
  // path, one enqueue a request, skips checking it again.
  if (definition === undefined) checkTaskName(name);
  rejectUnknownKeys('enqueue options', options, enqueueOptionKeys);
  const { now } = defaults;
  let runAt = now;
  if (options.runAt !== undefined && options.delay !== undefined) {
    throw new InvalidOptionError('enqueue options', 'give delay or runAt, not both');
  } else if (options.runAt !== undefined) {
    if (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime())) {
      throw new InvalidOptionError('enqueue options.runAt', 'must be a valid Date');
    }
    runAt = options.runAt.getTime();
  } else if (options.delay !== undefined) {
    runAt = now + durationOption('enqueue options.delay', options.delay, 0, MAX_DURATION);
  }
  if (options.traceparent !== undefined && typeof options.traceparent !== 'string') {
    throw new InvalidOptionError(
      'enqueue options.traceparent',
      'must be a W3C traceparent string, e.g. the traceparent header of the request',
    );
  }
  const { key } = options;
  if (
    key !== undefined &&
    (typeof key !== 'string' || key.length === 0 || key.length > 500 || !isStorableText(key))
  ) {
    throw new InvalidOptionError(
      'enqueue options.key',
      'must be a string of 1 to 500 characters without NUL or unpaired surrogates, which the stores cannot hold',
    );
  }
  return {
    name,
    payload: encodePayload(payload),
    priority: integerOption(
      'enqueue options.priority',
      options.priority ?? definition?.priority ?? 0,
      -1000,
      1000,
    ),
    maxAttempts: integerOption(
      'enqueue options.maxAttempts',
      options.maxAttempts ?? definition?.maxAttempts ?? defaults.maxAttempts,
      1,
      MAX_ATTEMPTS_LIMIT,
    ),
    timeout:
      options.timeout === undefined
        ? null
        : durationOption('enqueue options.timeout', options.timeout),
    key: key ?? null,
    group: groupOf(options.group, definition?.group, payload),
    runAt,
    createdAt: now,
    // Set by the runtime's tracing, once the enqueue's span is started.
    trace: null,
  };
}
