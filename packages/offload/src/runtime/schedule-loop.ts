import type { Events } from './events.js';
import type { Settings } from './options.js';
import type { FireOutcome } from './schedules.js';

/**
 * How long to wait when a schedule is due but another process is firing it: its transaction ends
 * in a few ms, and then its next due time is read.
 */
const FIRED_ELSEWHERE_WAIT = 50;

/**
 * Fires due schedules while the runtime runs: sleeps until the earliest due time the store holds,
 * or `pollInterval` if that is sooner (other processes may set schedules), then fires. The store
 * is the source of truth; the timer only says when to look again.
 */
export class ScheduleLoop {
  private timer: NodeJS.Timeout | undefined;
  private underWay: Promise<void> | null = null;
  private running = false;
  /** A wake came while a look was under way: look again when it ends. */
  private again = false;

  constructor(
    private readonly fireOnce: () => Promise<FireOutcome>,
    private readonly settings: Settings,
    private readonly events: Events,
  ) {}

  start(): void {
    this.running = true;
    this.look();
  }

  /** A schedule was set or resumed here: look again now rather than at the timer. */
  wake(): void {
    if (!this.running) return;
    if (this.underWay) this.again = true;
    else this.look();
  }

  /** Stops the timer and waits for the look under way. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.underWay;
  }

  private look(): void {
    clearTimeout(this.timer);
    this.again = false;
    const look = this.fireOnce()
      .then(
        (outcome) => this.delayAfter(outcome),
        (error: unknown) => {
          this.events.emit('runtime:error', { error, during: 'firing schedules' });
          return this.settings.pollInterval;
        },
      )
      .then((delay) => {
        this.underWay = null;
        if (!this.running) return;
        if (this.again) return this.look();
        this.timer = setTimeout(() => this.look(), delay);
      });
    this.underWay = look;
  }

  private delayAfter({ more, nextRunAt, now }: FireOutcome): number {
    const { pollInterval, clock } = this.settings;
    if (more) return 0;
    if (nextRunAt === null) return pollInterval;
    // Due when the look began, yet not fired by it (it fired every due schedule it could take):
    // another process is firing it.
    if (nextRunAt <= now) return Math.min(FIRED_ELSEWHERE_WAIT, pollInterval);
    // Due since the look began, or later.
    return Math.min(Math.max(nextRunAt - clock.now(), 0), pollInterval);
  }
}
