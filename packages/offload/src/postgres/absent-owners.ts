import { SECOND } from '../time.js';

/**
 * How long another process's liveness lock must be seen free, without a break, before its tasks
 * are handed back. A live process retakes its locks within about a second of the server taking
 * connections again (its liveness connection retries at most `RECONNECT_CAP` apart), so three
 * seconds leave room for the connection itself and a busy event loop.
 */
export const OWNER_GRACE = 3 * SECOND;

/**
 * What rescue has seen of the liveness locks of other processes' owners.
 *
 * A free lock alone does not mean the owner died: its liveness connection may have broken (a
 * server restart, an administrator's `pg_terminate_backend`, a network blip) while the process
 * lives on and reconnects. So an owner counts as gone only once its lock was free at every look
 * for `OWNER_GRACE`, all made while this process's own liveness session lasted. That session is
 * the proof that the server stayed up meanwhile: a restart, or every session being cut, ends it
 * too, and the count starts again once this process is back, giving the owner the same time to
 * come back. A look that failed, or that another process made instead, also starts the count
 * again, as the owner may have been back in between.
 *
 * Why that is enough: an owner whose lock stays free that long while the server takes
 * connections has died, or cannot reach the server, and then cannot renew its leases either.
 * The tasks of a process that died are rescued `OWNER_GRACE` (plus up to one rescue interval)
 * after its session ended, still far sooner than its leases would expire.
 */
export class AbsentOwners {
  /** Owner → when its lock was first seen free in the current run of looks (monotonic ms). */
  private readonly since = new Map<string, number>();
  private session: number | null = null;

  constructor(
    private readonly grace = OWNER_GRACE,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Records one look, made during `session` of this process's liveness connection, in which the
   * locks of `absent` were free; returns the owners whose lock has been free for the grace.
   */
  observe(absent: readonly string[], session: number): string[] {
    if (session !== this.session) this.forget();
    this.session = session;
    const now = this.now();
    const seen = new Set(absent);
    for (const owner of this.since.keys()) if (!seen.has(owner)) this.since.delete(owner);
    const gone: string[] = [];
    for (const owner of seen) {
      const since = this.since.get(owner);
      if (since === undefined) this.since.set(owner, now);
      else if (now - since >= this.grace) gone.push(owner);
    }
    return gone;
  }

  /** Starts every count again: a look was missed, so an owner may have been back meanwhile. */
  forget(): void {
    this.since.clear();
    this.session = null;
  }
}
