import type { IncomingMessage } from 'node:http';
import { BackgroundCommitError } from '../errors/background-commit.js';
import { describe, InvalidOptionError, rejectUnknownKeys } from '../options-check.js';
import { kAnsweredRequest, type Runtime } from '../runtime/runtime.js';

/** The options every adapter takes. */
export interface AdapterOptions {
  /** The runtime that stores and runs the tasks; see `createRuntime`. */
  runtime: Runtime;
  /**
   * Start the runtime when the adapter is made, so that tasks run in this process. Default true;
   * false makes an API-only process, whose tasks other processes run on a shared store.
   */
  start?: boolean;
  /**
   * Stop the runtime (gracefully, see its `shutdownGrace`) when the HTTP server that serves the
   * adapter's requests closes; that server is the one of the first request. Default true.
   */
  stop?: boolean;
}

type Closable = { once(event: 'close', listener: () => void): unknown };

/**
 * What an adapter does with its runtime besides storing tasks: starts it, stops it with the
 * server, and tells it of every request answered, so that a draining backlog shares the loop.
 */
export class RuntimeLink {
  readonly runtime: Runtime;
  /** Why the runtime could not start, once it failed; every request is then answered 503. */
  private startError: BackgroundCommitError | null = null;
  private watching: boolean;
  /** Tells the runtime a request was answered (a runtime from another copy has no such hook). */
  readonly answered: () => void;

  /**
   * Checks `options` once, naming the field at fault (`known`: the options this adapter takes,
   * for the suggestion on a typo).
   */
  constructor(
    options: AdapterOptions,
    adapter: string,
    known: readonly string[] = ['runtime', 'start', 'stop'],
  ) {
    rejectUnknownKeys(`${adapter} options`, options, known);
    const { runtime, start = true, stop = true } = options;
    if (!runtime || typeof runtime.enqueue !== 'function') {
      throw new InvalidOptionError(
        `${adapter} options.runtime`,
        `must be a runtime made by createRuntime(), got ${describe(runtime)}`,
      );
    }
    for (const [name, value] of [
      ['start', start],
      ['stop', stop],
    ] as const) {
      if (typeof value !== 'boolean') {
        throw new InvalidOptionError(
          `${adapter} options.${name}`,
          `must be true or false, got ${describe(value)}`,
        );
      }
    }
    this.runtime = runtime;
    this.watching = stop;
    const hook = kAnsweredRequest in runtime ? runtime : null;
    this.answered = hook ? () => hook[kAnsweredRequest]() : () => {};
    if (start) {
      runtime.start().catch((error: unknown) => {
        this.startError = new BackgroundCommitError(error);
      });
    }
  }

  /**
   * Called with each request: on the first, stops the runtime with the server that received it.
   * Returns why the request must be refused (the runtime failed to start), or null.
   */
  admit(request: IncomingMessage | undefined): BackgroundCommitError | null {
    if (this.watching) {
      const server = (request?.socket as { server?: Closable } | undefined)?.server;
      if (server) {
        this.watching = false;
        // The runtime reports what failed in its stop through its own events and logger.
        server.once('close', () => void this.runtime.stop().catch(() => {}));
      }
    }
    return this.startError;
  }
}
