/**
 * Recipients that said they are gone for good (a webhook URL that answered 410, a push
 * subscription the push service no longer knows): later deliveries to them fail at once, without
 * a request. Kept in this process, at most `limit` of them, oldest forgotten first; a restart
 * forgets them (the next delivery then learns it again from the recipient).
 */
export class GoneRecipients {
  private readonly reasons = new Map<string, string>();

  constructor(private readonly limit = 10_000) {}

  /** Why `key` is gone, with when it was found out; undefined when it is not. */
  get(key: string): string | undefined {
    return this.reasons.get(key);
  }

  mark(key: string, reason: string, at = new Date()): void {
    this.reasons.delete(key);
    this.reasons.set(key, `${reason} (${at.toISOString()})`);
    if (this.reasons.size > this.limit) {
      this.reasons.delete(this.reasons.keys().next().value!);
    }
  }
}
