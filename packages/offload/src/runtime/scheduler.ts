import type { ClaimedTask, Lease, Store } from '../store/store.js';
import type { Events } from './events.js';
import type { Settings } from './options.js';
import { Prefetch } from './prefetch.js';

// How these limits weigh a draining backlog against the requests the process answers meanwhile is
// measured in BENCHMARKS.md, sections "HTTP: p99 at a steady 2,000 requests/s" and "Drain: SQLite
// and memory against plainjob and BullMQ".

/**
 * Most tasks one claim takes while no request was answered lately (a worker process, or an API
 * process between requests): as many as there are free slots, up to this. Each claim is a round
 * trip and a transaction, so a drain goes as fast as claims are large; with no requests to
 * answer, a long turn keeps nobody waiting.
 */
const CLAIM_BATCH = 1000;
/**
 * Most tasks one claim takes while requests are answered (see SERVING_WINDOW): smaller turns, so
 * that a request waits less behind a drain, for a slightly slower drain. With no requests
 * answered, a drain claims CLAIM_BATCH at a time.
 */
const SERVING_CLAIM_BATCH = 25;
/**
 * While requests are answered, a claim also takes no more tasks than the one before says fit in
 * this many ms of the event loop (claiming them and starting them), and at least one: tasks that
 * hold the loop (or whose code V8 has not compiled yet) are claimed a few at a time, so that tasks
 * that each hold the loop 5 ms make turns of 5 ms, not of SERVING_CLAIM_BATCH times that.
 */
const SERVING_TURN_MS = 1;
/** Until a claim has been timed: 5 tasks a turn. */
const FIRST_TASK_COST_MS = SERVING_TURN_MS / 5;
/**
 * Shortest time between two claims, in ms, unless the last one found a backlog and half the slots
 * are free: tasks that arrive one by one, or finish one by one, share a claim (one write) instead
 * of paying one each. A task that arrives within that time of the last claim starts up to that
 * much later.
 */
const CLAIM_COOLDOWN = 5;
/**
 * For this long (ms) after requests were answered, a draining backlog yields to them: each claim
 * waits as long as the one before held the event loop (claiming and starting its tasks), so the
 * backlog gets about half the loop and the requests the rest. With no requests, full speed.
 */
const SERVING_WINDOW = 100;

/**
 * Tells a runtime that the app just answered a request (offload/fastify does, for every request),
 * so that a backlog draining now shares the event loop; see SERVING_WINDOW.
 */
export const kAnsweredRequest = Symbol('offload.answeredRequest');

/** What the scheduler needs of the runtime it claims for. */
export interface ClaimingRuntime {
  /** Whether claims may be made: the runtime was started or a drain waits, and it is not stopping. */
  mayClaim(): boolean;
  /** Whether the runtime was started and is not stopping: it looks again every `pollInterval`. */
  polls(): boolean;
  /** Whether `stop()` was called: no timer is set any more. */
  stopping(): boolean;
  /** How many attempts run here. */
  running(): number;
  /** Starts a claimed task. */
  run(task: ClaimedTask): void;
}

/**
 * Decides when to claim due tasks and how many: once per event-loop turn at most, after a short
 * cooldown when tasks come one by one, and, while the app answers requests, in turns that leave
 * the event loop to them.
 */
export class Scheduler {
  /** Names this process runs: claims ask for these only. */
  private readonly names: string[];
  private claiming: Promise<number> | null = null;
  /** False once a claim found fewer tasks than it asked for, until something wakes the runtime. */
  private moreDue = true;
  private wakeups = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private refillTimer: NodeJS.Timeout | undefined;
  private wakeAt = Infinity;
  private pumpScheduled = false;
  /** performance.now() of the latest claim. */
  private lastClaim = -Infinity;
  /**
   * While requests are answered, when a draining backlog may claim again: the end of the latest
   * claim plus as long as it held the event loop (the store's call and starting its tasks).
   */
  private yieldUntil = -Infinity;
  /** How long the latest claim held the event loop per task it took, ms (see SERVING_TURN_MS). */
  private taskCost = FIRST_TASK_COST_MS;
  /** A request was answered since the scheduler last looked (see kAnsweredRequest). */
  private requestAnswered = false;
  /** performance.now() when the scheduler last found a request answered. */
  private lastAnswered = -Infinity;
  /** The last claim took as many tasks as it asked for: more are probably due. */
  private backlog = false;
  /** Tasks claimed ahead of a free slot (see Prefetch). */
  private readonly prefetch = new Prefetch();

  constructor(
    private readonly store: Store,
    private readonly settings: Settings,
    private readonly events: Events,
    private readonly runtime: ClaimingRuntime,
  ) {
    this.names = [...settings.tasks.keys()];
  }

  /** The claim under way, if any; it resolves with how many tasks it started. */
  get underWay(): Promise<number> | null {
    return this.claiming;
  }

  /** How many claimed tasks wait here for a slot. */
  get waiting(): number {
    return this.prefetch.size;
  }

  /** The leases of the tasks waiting here. */
  leases(): Lease[] {
    return this.prefetch.leases();
  }

  /** Takes a waiting task out, unstarted (canceled, or its lease lost). */
  drop(id: string): void {
    this.prefetch.drop(id);
  }

  /** On stop: every task waiting here, taken out to be handed back. */
  takeWaiting(): ClaimedTask[] {
    return this.prefetch.takeAll();
  }

  /** The app answered a request (see kAnsweredRequest). */
  answeredRequest(): void {
    this.requestAnswered = true;
  }

  /** Whether a claim may be made now: the runtime allows it and this process runs some task. */
  canClaim(): boolean {
    return this.runtime.mayClaim() && this.names.length > 0;
  }

  /** Something became due at `at`: claim now, or set a timer for it. */
  wake(name: string, at: number): void {
    if (!this.settings.tasks.has(name)) return;
    const delay = at - this.settings.clock.now();
    if (delay > 0) this.wakeLater(delay);
    else this.wakeNow();
  }

  /** Tasks may be due: look from the next turn on, even if the last claim came back short. */
  wakeNow(): void {
    this.wakeups += 1;
    this.moreDue = true;
    this.pump();
  }

  /**
   * Looks for due tasks from the next event-loop turn on, once per turn however many tasks ended
   * or arrived in this one: synchronous tasks run inside a claim, so claims made back to back in
   * one turn would keep the loop from answering requests until a whole backlog has run.
   */
  pump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.claimIfDue();
    });
  }

  /** Claims due tasks for the free slots now, unless a claim is under way (then that one). */
  claimNow(): Promise<number> {
    if (this.claiming) return this.claiming;
    this.startWaiting();
    const now = performance.now();
    this.lastClaim = now;
    const serving = this.serving(now);
    const batch = serving
      ? Math.max(1, Math.min(SERVING_CLAIM_BATCH, Math.floor(SERVING_TURN_MS / this.taskCost)))
      : CLAIM_BATCH;
    const claim = this.claimAndRun(Math.min(batch, this.room(now, serving)))
      .catch((error: unknown) => {
        this.events.emit('runtime:error', { error, during: 'starting claimed tasks' });
        return 0;
      })
      .finally(() => {
        this.claiming = null;
        if (this.moreDue) this.pump();
        else if (this.runtime.polls()) this.wakeLater(this.settings.pollInterval);
      });
    this.claiming = claim;
    return claim;
  }

  /** Clears the timers; resolves once the claim under way, if any, has started its tasks. */
  async stop(): Promise<void> {
    clearTimeout(this.wakeTimer);
    clearTimeout(this.refillTimer);
    await this.claiming;
  }

  /** Wakes after `delay` ms, or after `pollInterval` if that is sooner (others may enqueue). */
  private wakeLater(delay: number): void {
    const wait = Math.min(delay, this.settings.pollInterval);
    const at = Date.now() + wait;
    if (at >= this.wakeAt || this.runtime.stopping()) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeAt = Infinity;
      this.wakeNow();
    }, wait);
  }

  /** Claims due tasks for the free slots now, or sets a timer for when it may (see nextClaimAt). */
  private claimIfDue(): void {
    // Tasks started from those waiting make this turn's work; a claim may come in the next.
    if (this.startWaiting() > 0) return this.pump();
    if (this.claiming || !this.moreDue || !this.canClaim()) return;
    const now = performance.now();
    const serving = this.serving(now);
    const room = this.room(now, serving);
    if (room <= 0) return;
    const wait = this.nextClaimAt(room, now, serving) - now;
    if (wait <= 0) {
      void this.claimNow();
    } else if (this.refillTimer === undefined) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.pump();
      }, wait);
    }
  }

  /**
   * How many tasks a claim may take now: the free slots, and, with no requests to answer, as many
   * more as may wait here for a slot (see Prefetch).
   */
  private room(now: number, serving: boolean): number {
    const { concurrency } = this.settings;
    const ahead = this.prefetch.depth(now, concurrency, serving);
    return concurrency - this.runtime.running() - this.prefetch.size + ahead;
  }

  /**
   * Starts waiting tasks in the free slots, oldest first, unless the runtime is stopping; returns
   * how many it started.
   */
  private startWaiting(): number {
    if (this.prefetch.size === 0 || !this.runtime.mayClaim()) return 0;
    const now = performance.now();
    let started = 0;
    while (this.prefetch.size > 0 && this.runtime.running() < this.settings.concurrency) {
      this.prefetch.started(now);
      this.runtime.run(this.prefetch.shift()!);
      started += 1;
    }
    return started;
  }

  /**
   * When the next claim may begin. When the last claim found a backlog and half the room is
   * free, a drain goes on at once, or, while requests are being answered, once the loop has had
   * as long for them as that claim took. Otherwise after the cooldown: tasks arriving or finishing
   * one by one (under HTTP load, say) share a claim instead of each paying a write transaction.
   */
  private nextClaimAt(room: number, now: number, serving: boolean): number {
    const { concurrency } = this.settings;
    const capacity = concurrency + this.prefetch.depth(now, concurrency, serving);
    if (!this.backlog || room * 2 < capacity) return this.lastClaim + CLAIM_COOLDOWN;
    return serving ? this.yieldUntil : now;
  }

  /** Whether the app answered a request within SERVING_WINDOW of `now`. */
  private serving(now: number): boolean {
    if (this.requestAnswered) {
      this.requestAnswered = false;
      this.lastAnswered = now;
    }
    return now - this.lastAnswered < SERVING_WINDOW;
  }

  private async claimAndRun(limit: number): Promise<number> {
    if (limit <= 0 || !this.canClaim()) return 0;
    const wakeups = this.wakeups;
    const now = this.settings.clock.now();
    let tasks: ClaimedTask[];
    // The loop's own time: a store that waits on the network (PostgreSQL) holds it only briefly.
    const began = performance.now();
    let held: number;
    try {
      const claimed = this.store.claim({
        owner: this.settings.owner,
        names: this.names,
        limit,
        now,
        leaseExpiresAt: now + this.settings.leaseDuration,
      });
      held = performance.now() - began;
      tasks = await claimed;
    } catch (error) {
      this.events.emit('runtime:error', { error, during: 'claiming tasks' });
      this.moreDue = false;
      return 0;
    }
    const starting = performance.now();
    let nextStart = Infinity;
    for (const task of tasks) {
      // A key under a rate allows its next start one step later: look again then, not at the poll.
      const rate = task.group?.rate;
      if (rate) nextStart = Math.min(nextStart, rate.period / rate.max);
      if (this.runtime.running() >= this.settings.concurrency || !this.runtime.mayClaim()) {
        this.prefetch.push(task);
        continue;
      }
      this.prefetch.started(starting);
      this.runtime.run(task);
    }
    if (nextStart !== Infinity) this.wakeLater(Math.ceil(nextStart));
    const ended = performance.now();
    const hold = held + (ended - starting);
    this.yieldUntil = ended + hold;
    if (tasks.length > 0) this.taskCost = hold / tasks.length;
    this.backlog = tasks.length === limit;
    this.moreDue = this.backlog || this.wakeups !== wakeups;
    return tasks.length;
  }
}
