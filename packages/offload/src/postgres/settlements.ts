import type { Settlement } from '../store/store.js';
import { encodeError } from '../store/stored-error.js';
import { checkId } from './task-ids.js';

/** Splits settlements (by index) into batches in which each task appears once, in order. */
export function rounds(settlements: readonly Settlement[]): number[][] {
  const batches: number[][] = [];
  const seen = new Map<string, number>();
  settlements.forEach((s, i) => {
    const round = seen.get(s.id) ?? 0;
    seen.set(s.id, round + 1);
    (batches[round] ??= []).push(i);
  });
  return batches;
}

/** The parameters of the `settle` statements: one array per column. */
export function endAttempts(settlements: readonly Settlement[]): unknown[] {
  const queued = (s: Settlement) => s.state === 'queued';
  return [
    settlements.map((s) => checkId(s.id)),
    settlements.map((s) => s.lease),
    settlements.map((s) => s.state),
    settlements.map((s) => (s.refund ? 1 : 0)),
    settlements.map((s) => (queued(s) ? (s.runAt ?? s.at) : null)),
    settlements.map((s) => (queued(s) ? null : s.at)),
    settlements.map((s) => (s.error ? encodeError(s.error) : null)),
    settlements.map((s) => (s.state === 'succeeded' ? (s.result ?? null) : null)),
    settlements.map((s) => s.progress ?? null),
  ];
}
