import type { Runtime } from '../runtime/runtime.js';
import type { Task, TaskStats } from '../types.js';
import { lagText } from './pages.js';

/** What a live client is told of one task: what the rows show. */
export interface TaskUpdate {
  id: string;
  state: Task['state'];
  attempts: string;
}

export interface LiveClient {
  /** Writes one server-sent event frame. */
  send(frame: string): void;
  /** Ends the stream: the dashboard is closing. */
  end(): void;
  /** The tasks the client's page shows. */
  ids: ReadonlySet<string>;
}

const HEARTBEAT_TICKS = 15;

export function taskUpdate(task: Task): TaskUpdate {
  return { id: task.id, state: task.state, attempts: `${task.attempts} / ${task.maxAttempts}` };
}

/**
 * Server-sent events for the pages open in browsers. While no client is connected it listens to
 * nothing and runs no timer. While some are, each task event costs a lookup in the set of tasks
 * the open pages show (and a map write for those), and once per `interval` each client gets the
 * changes of the tasks it shows and, when anything changed, the counts (read through `stats`,
 * which is cached).
 */
export class Live {
  private readonly clients = new Set<LiveClient>();
  /** The tasks some open page shows, with how many pages show each. */
  private readonly watched = new Map<string, number>();
  private changed = new Map<string, TaskUpdate>();
  private dirty = true;
  private timer: NodeJS.Timeout | null = null;
  private ticks = 0;
  private unsubscribe: (() => void)[] = [];
  private ticking = false;
  private closed = false;

  constructor(
    private readonly runtime: Runtime,
    private readonly stats: () => Promise<TaskStats | null>,
    private readonly interval: number,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  /** Adds a client; returns the function that removes it. */
  add(client: LiveClient): () => void {
    if (this.closed) {
      client.end();
      return () => undefined;
    }
    if (this.clients.size === 0) this.listen();
    this.clients.add(client);
    for (const id of client.ids) this.watched.set(id, (this.watched.get(id) ?? 0) + 1);
    this.dirty = true;
    return () => {
      if (!this.clients.delete(client)) return;
      for (const id of client.ids) {
        const left = (this.watched.get(id) ?? 1) - 1;
        if (left === 0) this.watched.delete(id);
        else this.watched.set(id, left);
      }
      if (this.clients.size === 0) this.quiet();
    };
  }

  /** A task changed (through an event, or an action of the dashboard). */
  note(task: Task): void {
    this.dirty = true;
    // Most tasks are on no open page: those cost a set lookup, nothing is kept of them.
    if (this.watched.has(task.id)) this.changed.set(task.id, taskUpdate(task));
  }

  /** Ends every stream, so that a server closing is not held open by them. */
  close(): void {
    this.closed = true;
    const clients = [...this.clients];
    this.clients.clear();
    this.watched.clear();
    this.quiet();
    for (const client of clients) client.end();
  }

  private listen(): void {
    const note = ({ task }: { task: Task }) => this.note(task);
    this.unsubscribe = [
      this.runtime.on('task:start', note),
      this.runtime.on('task:success', note),
      this.runtime.on('task:error', note),
      this.runtime.on('task:cancel', note),
      this.runtime.on('task:rescue', note),
      this.runtime.on('task:release', note),
    ];
    this.timer = setInterval(() => void this.tick(), this.interval).unref();
  }

  private quiet(): void {
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.changed.clear();
  }

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      this.ticks += 1;
      const changed = this.changed;
      this.changed = new Map();
      if (changed.size > 0) {
        for (const client of this.clients) {
          const mine = [...client.ids].flatMap((id) => changed.get(id) ?? []);
          if (mine.length > 0) client.send(frame('tasks', mine));
        }
      }
      if (this.dirty) {
        this.dirty = false;
        const stats = await this.stats();
        if (stats !== null) {
          const counts = frame('counts', {
            counts: stats.counts,
            lag: lagText(stats.oldestDue, this.now()),
          });
          for (const client of this.clients) client.send(counts);
        }
      } else if (this.ticks % HEARTBEAT_TICKS === 0) {
        for (const client of this.clients) client.send(': ping\n\n');
      }
    } finally {
      this.ticking = false;
    }
  }
}

/** One server-sent event: its data is JSON, which has no line break. */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
