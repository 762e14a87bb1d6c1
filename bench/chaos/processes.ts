/**
 * Real `offload` processes for the kill test: started through the CLI, killed with SIGKILL and
 * started again, with a record of every exit nobody asked for (a crash is a finding).
 */
import { once } from 'node:events';
import {
  listeningUrl,
  spawnCli,
  type Child,
  type LogLines,
} from '../../apps/service/test/fixtures/service-harness.js';
import type { NotifyTarget } from './notify-client.js';

export type Role = 'serve' | 'serve --no-runner' | 'worker';

/** Longest a process may take to start, in ms (tsx compiles at start; the machine is shared). */
const START_TIMEOUT = 30_000;

/** One role played by a succession of processes: each kill is followed by a new one. */
export class Supervised implements NotifyTarget {
  /** Exits that no kill asked for, with the end of their output. */
  readonly crashes: string[] = [];
  kills = 0;
  private child: Child | null = null;
  private current: string | null = null;
  private waiting: { promise: Promise<string>; resolve: (url: string) => void };

  constructor(
    readonly name: string,
    private readonly role: Role,
    private readonly env: Record<string, string>,
  ) {
    this.waiting = deferred();
  }

  /** Starts a process and waits until it serves (or, for a worker, runs). */
  async start(): Promise<void> {
    const child = spawnCli(this.role.split(' '), this.env);
    this.child = child;
    child.process.once('exit', (code, signal) => {
      if (this.child !== child) return;
      this.crashes.push(
        `${this.name} exited by itself (${code ?? signal}):\n${child.stderr().slice(-2000)}\n${child.logs.tail(10)}`,
      );
      this.markDown();
    });
    const url = await ready(child, this.role);
    this.current = url;
    this.waiting.resolve(url);
  }

  /** SIGKILL, waits for the exit, then starts the next process; resolves once it is ready. */
  async killAndRestart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    // Marked down first: a request that fails from now on waits for the next process.
    this.markDown();
    this.kills += 1;
    await killed(child);
  }

  /** Stops the current process for good, gracefully (SIGTERM) when asked. */
  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<number | string | null> {
    const child = this.child;
    this.child = null;
    this.markDown();
    if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return null;
    child.process.kill(signal);
    return child.exited(signal === 'SIGTERM' ? 40_000 : 10_000);
  }

  url(): Promise<string> {
    return this.current === null ? this.waiting.promise : Promise.resolve(this.current);
  }

  logs(): LogLines | undefined {
    return this.child?.logs;
  }

  private markDown(): void {
    if (this.current === null) return;
    this.current = null;
    this.waiting = deferred();
  }
}

async function ready(child: Child, role: Role): Promise<string> {
  const exited = once(child.process, 'exit').then(() => {
    throw new Error(`the process exited before it was ready:\n${child.stderr().slice(-2000)}`);
  });
  const up =
    role === 'worker'
      ? child.logs
          .waitFor((l) => l.msg === 'worker started', START_TIMEOUT, 'worker started line')
          .then(() => 'worker')
      : listeningUrl(child.logs, START_TIMEOUT);
  return Promise.race([up, exited]);
}

async function killed(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  const exit = once(child.process, 'exit');
  child.process.kill('SIGKILL');
  await exit;
}

function deferred(): { promise: Promise<string>; resolve: (url: string) => void } {
  let resolve!: (url: string) => void;
  const promise = new Promise<string>((r) => (resolve = r));
  return { promise, resolve };
}
