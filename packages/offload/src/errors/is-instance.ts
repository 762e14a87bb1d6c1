/** A class, private constructor or not, as `instanceof` takes it. */
type Class<T> = { prototype: T; [Symbol.hasInstance](value: unknown): boolean };

/**
 * `value instanceof type`, or false where `instanceof` itself throws. A task may throw anything:
 * a revoked Proxy, or one whose `getPrototypeOf` trap throws, makes `instanceof` throw, so the
 * runtime classifies what a task threw through this.
 */
export function isInstance<T>(value: unknown, type: Class<T>): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}
