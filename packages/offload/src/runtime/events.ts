import type { Json, Task } from '../types.js';

/** What the runtime tells its listeners. `task` is the task as this attempt left it. */
export interface RuntimeEvents {
  /** An attempt started. */
  'task:start': { task: Task };
  'task:success': { task: Task; duration: number };
  /**
   * A running task's progress (`ctx.progress`) was stored: at most once a second per task, and
   * with the attempt's outcome (before its `task:success` or `task:error`) when it reported a
   * value not yet told.
   */
  'task:progress': { task: Task; progress: Json };
  /** An attempt failed; `retryAt` is when it runs again, or null when it failed for good. */
  'task:error': { task: Task; error: unknown; duration: number; retryAt: Date | null };
  /** A failed attempt will be retried at `retryAt`. */
  'task:retry': { task: Task; error: unknown; retryAt: Date };
  /** No attempt is left, or the error was permanent. */
  'task:failed': { task: Task; error: unknown };
  'task:cancel': { task: Task };
  /** A task whose process died or whose lease expired was handed back (or failed, when no attempt was left). */
  'task:rescue': { task: Task; owner: string | null };
  /** A running task was handed back on shutdown without using up its attempt. */
  'task:release': { task: Task };
  /** Queued tasks whose name no loaded definition knows: they wait. */
  'task:unknown': { name: string; count: number };
  /** A schedule enqueued `task`, due at `task.runAt`. */
  'schedule:fire': { schedule: string; task: Task };
  /** Due times of a schedule, from `since` to `until`, were not run (its catch-up policy). */
  'schedule:missed': { schedule: string; since: Date; until: Date };
  /** The store or a listener failed; the runtime goes on. */
  'runtime:error': { error: unknown; during: string };
}

export type RuntimeEventName = keyof RuntimeEvents;
export type Listener<E extends RuntimeEventName> = (event: RuntimeEvents[E]) => unknown;

/**
 * A typed event emitter whose `emit` never throws: a listener that throws or rejects is reported
 * through `runtime:error` (and a failing `runtime:error` listener through `onListenerError`).
 */
export class Events {
  private readonly listeners = new Map<RuntimeEventName, Set<Listener<never>>>();

  constructor(
    private readonly onListenerError: (error: unknown, event: RuntimeEventName) => void,
  ) {}

  on<E extends RuntimeEventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  off<E extends RuntimeEventName>(event: E, listener: Listener<E>): void {
    this.listeners.get(event)?.delete(listener as Listener<never>);
  }

  has(event: RuntimeEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends RuntimeEventName>(event: E, payload: RuntimeEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        const result = (listener as Listener<E>)(payload);
        if (result instanceof Promise) result.catch((error) => this.listenerFailed(error, event));
      } catch (error) {
        this.listenerFailed(error, event);
      }
    }
  }

  private listenerFailed(error: unknown, event: RuntimeEventName): void {
    if (event !== 'runtime:error') {
      return this.emit('runtime:error', { error, during: `a listener of ${event}` });
    }
    try {
      this.onListenerError(error, event);
    } catch {
      // The logger failed too: nothing is left to report to, and emit must not throw.
    }
  }
}
