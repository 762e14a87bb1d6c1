/** A seeded random generator (mulberry32): the same seed gives the same kill schedule. */
export interface Random {
  readonly seed: number;
  /** A number in [0, 1). */
  next(): number;
  /** A whole number in [min, max]. */
  between(min: number, max: number): number;
}

export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return { seed, next, between: (min, max) => min + Math.floor(next() * (max - min + 1)) };
}

/** A seed from `--seed=N` or the clock, printed by the caller so that a run can be repeated. */
export function chooseSeed(given: string | undefined): number {
  if (given === undefined) return Date.now() % 2 ** 31;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number`);
  return seed;
}
