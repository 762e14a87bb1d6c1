import { BackgroundCommitError } from '../errors/background-commit.js';
import { InvalidOptionError } from '../errors/invalid-option.js';
import { InvalidPayloadError } from '../errors/invalid-payload.js';
import { OffloadError } from '../errors/offload-error.js';
import {
  isTaskName,
  type EnqueueOptions,
  type PayloadOf,
  type Runtime,
  type Task,
  type TaskDefinition,
  type TaskRequest,
} from '../index.js';
import { checkPayload } from '../runtime/payload-schema.js';

type State = 'open' | 'discarded' | 'closed';

/**
 * The tasks one request schedules, like FastAPI's `BackgroundTasks`. What a handler adds is
 * stored right before the response is sent, only if the request did not end in an error; once
 * stored, the tasks are the runtime's: durable, retried, and visible through the status API.
 */
export class Background {
  private pending: TaskRequest[] = [];
  private state: State = 'open';

  /**
   * `traceparent`: the request's `traceparent` header. Each task added carries it (unless its
   * options give one), and continues that trace when no span is active (docs/tracing.md).
   */
  constructor(
    private readonly runtime: Runtime,
    private readonly traceparent?: string,
  ) {}

  /** Tasks added and not stored yet. */
  get size(): number {
    return this.pending.length;
  }

  /**
   * Schedules `task` with `payload` (JSON) for after the response. `task` is a definition made by
   * `defineTask`, or the name of one that another process runs; anything else, a plain function
   * say, throws an `InvalidOptionError` here. Options are those of `runtime.enqueue`.
   *
   * A definition with a `schema` checks the payload here, and one it refuses throws an
   * `InvalidPayloadError` naming each path, so the handler fails before it answers. A schema that
   * checks asynchronously (an async refinement) cannot answer in this synchronous call: its
   * payload is checked when the tasks are stored, right before the response (or at `commit()`),
   * and a refusal then fails the request with that `InvalidPayloadError`.
   */
  add<T extends TaskDefinition<never> | string>(
    task: T,
    payload: PayloadOf<T>,
    options?: EnqueueOptions,
  ): void {
    checkTask(task);
    if (this.state !== 'open') {
      throw new OffloadError(
        'BACKGROUND_CLOSED',
        this.state === 'closed'
          ? 'request.background.add() was called after the response was sent; use runtime.enqueue() outside a request'
          : 'request.background.add() was called after the request failed; its tasks were discarded',
      );
    }
    // Checked again when stored; an asynchronous check is left to then.
    if (typeof task !== 'string') void checkPayload(task, payload)?.catch(() => undefined);
    const traced =
      this.traceparent === undefined || options?.traceparent !== undefined
        ? options
        : { ...options, traceparent: this.traceparent };
    this.pending.push({ task: task as TaskDefinition<unknown> | string, payload, options: traced });
  }

  /**
   * Stores the tasks added so far now, instead of right before the response, and returns them:
   * for a handler that puts a task's id in its answer. A task stored this way stays stored even
   * if the handler throws afterwards. Rejects with a `BackgroundCommitError` (503) when the store
   * cannot take them; a payload that is not JSON rejects with `InvalidPayloadError` (a bug).
   */
  async commit(): Promise<Task[]> {
    const requests = this.pending;
    this.pending = [];
    if (requests.length === 0) return [];
    try {
      if (requests.length === 1) {
        // One task: share the commit of every request answered in this event-loop turn.
        const { task, payload, options } = requests[0]!;
        return [(await this.runtime.enqueue(task, payload, options)) as Task];
      }
      // Several: one transaction of their own, so that they are stored all or none.
      return await this.runtime.enqueueMany(requests);
    } catch (error) {
      if (error instanceof InvalidPayloadError || error instanceof InvalidOptionError) throw error;
      throw new BackgroundCommitError(error);
    }
  }

  /** The request failed: nothing added is stored, and nothing more may be added. */
  discard(): void {
    this.pending = [];
    if (this.state === 'open') this.state = 'discarded';
  }

  /** The response is being sent: stores what is pending (unless discarded) and closes. */
  close(): Promise<Task[]> | null {
    if (this.state !== 'open') return null;
    this.state = 'closed';
    return this.pending.length > 0 ? this.commit() : null;
  }
}

/**
 * Refuses, at the call, what is neither a definition nor a task name. A task is stored by its
 * name and run by the definition of that name in whichever process claims it, so a function
 * cannot be one: it is not stored anywhere.
 */
function checkTask(task: unknown): void {
  if (typeof task === 'string' ? isTaskName(task) : isDefinition(task)) return;
  throw new InvalidOptionError(
    'request.background.add task',
    `must be a defineTask(...) definition, or the name of one, got ${describeTask(task)}. Define the task once with defineTask({ name, run }), give it to createRuntime({ tasks }), and add that definition`,
  );
}

function isDefinition(task: unknown): boolean {
  if (typeof task !== 'object' || task === null) return false;
  const { name, run } = task as { name?: unknown; run?: unknown };
  return isTaskName(name) && typeof run === 'function';
}

function describeTask(task: unknown): string {
  if (typeof task === 'function') return task.name ? `a function (${task.name})` : 'a function';
  if (typeof task === 'string') return `the string ${JSON.stringify(task)}, which is no task name`;
  if (typeof task === 'object' && task !== null) return 'an object that is not a task definition';
  return String(task);
}

/** A request's `traceparent` header, when it has exactly one. */
export function traceparentHeader(value: string | string[] | null | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
