import type { TaskGroup, TaskState } from '../types.js';
import { keyAllows, tatAfter } from './group-limits.js';
import type { PausedName } from './store.js';

interface KeyState {
  running: number;
  tat: number;
  throttledUntil: number;
}

/** The memory store's groups (running tasks, rate schedule, throttle per key) and paused names. */
export class MemoryLimits {
  private readonly keys = new Map<string, KeyState>();
  private readonly pausedNames = new Map<string, number>();

  /** Whether a task of `name` and `group` may start at `now`; if so, counts its start in the rate. */
  mayStart(name: string, group: TaskGroup | null, now: number): boolean {
    if (this.pausedNames.has(name)) return false;
    if (group === null) return true;
    const state = this.key(group.key);
    if (keyAllows(group, state, now, 1) === 0) return false;
    if (group.rate !== null) state.tat = tatAfter(group.rate, state.tat, now, 1);
    return true;
  }

  /** Counts a task of `group` that goes from state `from` to `to`. */
  moved(group: TaskGroup | null, from: TaskState, to: TaskState): void {
    if (group === null || (from === 'running') === (to === 'running')) return;
    this.key(group.key).running += to === 'running' ? 1 : -1;
  }

  throttle(key: string, until: number): void {
    const state = this.key(key);
    state.throttledUntil = Math.max(state.throttledUntil, until);
  }

  pause(name: string, now: number): boolean {
    if (this.pausedNames.has(name)) return false;
    this.pausedNames.set(name, now);
    return true;
  }

  resume(name: string): boolean {
    return this.pausedNames.delete(name);
  }

  paused(): PausedName[] {
    return [...this.pausedNames]
      .map(([name, pausedAt]) => ({ name, pausedAt }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private key(key: string): KeyState {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { running: 0, tat: 0, throttledUntil: 0 }));
    return state;
  }
}
