import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { SECOND, StoreUnavailableError, systemClock, type Clock } from 'offload';

export interface StoreFaultLogOptions {
  /** Where the time is read; default the system clock. */
  clock?: Clock;
  /** How often (ms) the answers counted for a fault are summed up in one line. Default 10 s. */
  interval?: number;
}

/** A store that cannot serve now, as logged: its driver's code (or the store's reason) and why. */
interface StoreFault {
  /** The driver's code (`SQLITE_FULL`, `ECONNREFUSED`), or the store's reason when it gave none. */
  code: string;
  hint: string;
  message: string;
}

/** Answers for one fault since its last line. */
interface Episode {
  fault: StoreFault;
  /** When the count started (ms since the epoch). */
  since: number;
  count: number;
}

/**
 * Logs the 503s of a store that cannot serve (a full disk, a database server away: the store
 * throws a `StoreUnavailableError`) without flooding the log, which is often on the very disk that
 * is full: the first answer for a fault (by the driver's code the store reports) is logged in
 * full, without stacks, as such a fault is no bug; the later ones are counted, and the count is
 * written at most once an interval:
 * "store unavailable: 1,234 more requests answered 503 in the last 10 s (SQLITE_FULL: …)". A fault
 * with no answer for a whole interval is over: its next answer is logged in full again.
 */
export class StoreFaultLog {
  private readonly clock: Clock;
  private readonly interval: number;
  private readonly episodes = new Map<string, Episode>();
  /** Requests whose answer was counted instead of logged. */
  private readonly counted = new WeakSet<FastifyRequest>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly logger: FastifyBaseLogger,
    options: StoreFaultLogOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.interval = options.interval ?? 10 * SECOND;
  }

  /**
   * Logs, or counts, the 503 answered to `request` for `error`. Returns false, logging nothing,
   * when `error` is not a store that cannot serve: the caller logs it as any other error.
   */
  answered(request: FastifyRequest, error: unknown): boolean {
    const fault = storeFault(error);
    if (fault === null) return false;
    const now = this.clock.now();
    const episode = this.episodes.get(fault.code);
    if (episode === undefined) {
      this.episodes.set(fault.code, { fault, since: now, count: 0 });
      request.log.error(
        { fault: { code: fault.code, message: fault.message } },
        `store unavailable: answered 503 (${fault.code}: ${fault.hint}); further answers for it are counted, in one line every ${this.interval / SECOND} s`,
      );
      this.timer ??= setInterval(() => this.summarize(), this.interval).unref();
      return true;
    }
    episode.count += 1;
    this.counted.add(request);
    if (now - episode.since >= this.interval) this.write(episode, now);
    return true;
  }

  /** Whether the answer to `request` was counted: its "request completed" line is debug only. */
  wasCounted(request: FastifyRequest): boolean {
    return this.counted.has(request);
  }

  /**
   * Writes the count of each fault answered since its last line, and ends the faults that had no
   * answer for an interval. Runs every interval while a fault lasts.
   */
  summarize(): void {
    const now = this.clock.now();
    for (const [code, episode] of this.episodes) {
      if (episode.count > 0) this.write(episode, now);
      else if (now - episode.since >= this.interval) this.episodes.delete(code);
    }
    if (this.episodes.size === 0) this.stop();
  }

  /** Writes what is counted, and stops. */
  close(): void {
    const now = this.clock.now();
    for (const episode of this.episodes.values()) {
      if (episode.count > 0) this.write(episode, now);
    }
    this.episodes.clear();
    this.stop();
  }

  private write(episode: Episode, now: number): void {
    const { fault, count } = episode;
    const seconds = Math.max(1, Math.round((now - episode.since) / SECOND));
    this.logger.error(
      { fault: { code: fault.code }, count, seconds },
      `store unavailable: ${count.toLocaleString('en-US')} more ${count === 1 ? 'request' : 'requests'} answered 503 in the last ${seconds} s (${fault.code}: ${fault.hint})`,
    );
    episode.since = now;
    episode.count = 0;
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * The store's report along `error` and its causes (an error that wraps it, as a commit that failed
 * or `/readyz` does), or null when the store did not say it cannot serve.
 */
function storeFault(error: unknown): StoreFault | null {
  let current = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current instanceof StoreUnavailableError) {
      const { driverCode, reason, hint, message } = current;
      return { code: driverCode ?? reason, hint, message };
    }
    current = current.cause;
  }
  return null;
}
