/**
 * Where a runtime is in its life, one state at a time. Enqueues, reads and `drain()` work from
 * `idle` on, before `start()`; tasks are claimed on their own only while `running`. `start()` and
 * `stop()` keep their promise here, so that a second call returns the first one's.
 */
export type Lifecycle =
  /** Made; nothing runs yet. */
  | { state: 'idle' }
  /** `start()` opens the store, registers this worker and starts the maintenance. */
  | { state: 'starting'; started: Promise<void> }
  /** Claims and runs due tasks. */
  | { state: 'running'; started: Promise<void> }
  /** `stop()` was called: nothing more is claimed; running tasks have `shutdownGrace` to end. */
  | { state: 'stopping'; stopped: Promise<void> }
  /** Running tasks ended or were handed back; enqueues are refused while the rest is written. */
  | { state: 'flushing'; stopped: Promise<void> }
  /** The store is closed or closing: reads are refused too. */
  | { state: 'stopped'; stopped: Promise<void> };

/** Whether `stop()` was called. */
export function stopCalled(lifecycle: Lifecycle): boolean {
  return 'stopped' in lifecycle;
}

/**
 * Whether tasks are taken, and outcomes the store failed to take are tried again later: until the
 * stop has handed back the running tasks.
 */
export function accepting({ state }: Lifecycle): boolean {
  return state !== 'flushing' && state !== 'stopped';
}

/** The stop under way, moved on to `state`. */
export function stopReached(lifecycle: Lifecycle, state: 'flushing' | 'stopped'): Lifecycle {
  return 'stopped' in lifecycle ? { state, stopped: lifecycle.stopped } : lifecycle;
}
