import pg from 'pg';
import type { Logger } from '../../types.js';

/** How long to wait before connecting again after the connection was lost, in ms. */
const RECONNECT_DELAYS = [100, 500, 1000, 2000, 5000];

/**
 * One dedicated connection per store that (1) holds a session advisory lock per registered owner,
 * which PostgreSQL releases the moment the session ends (the process died, or lost its
 * connection), so rescue can tell a dead owner from a live one without waiting for leases to
 * expire; and (2) LISTENs for the trigger that tells runners tasks were added. It reconnects by
 * itself, taking its locks and LISTEN again.
 */
export class Liveness {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly owners = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private closed = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly lockClass: number,
    private readonly logger: Logger,
  ) {}

  /** Takes the owner's lock; throws when another live session holds it (the owner is taken). */
  async register(owner: string): Promise<void> {
    const client = await this.connected();
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
      [this.lockClass, owner],
    );
    if (!rows[0]!.locked) {
      throw new Error(
        `the worker name ${JSON.stringify(owner)} is in use by another live process on this database; give each process its own owner`,
      );
    }
    this.owners.add(owner);
  }

  async unregister(owner: string): Promise<void> {
    if (!this.owners.delete(owner) || this.client === null) return;
    await this.client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [this.lockClass, owner]);
  }

  /** Calls `listener` whenever tasks were added to the store, by any process. */
  async watch(listener: () => void): Promise<void> {
    this.listeners.add(listener);
    if (this.listeners.size === 1) await (await this.connected()).query(`LISTEN ${this.channel}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client ?? (await this.connecting?.catch(() => null));
    this.client = null;
    this.owners.clear();
    this.listeners.clear();
    await client?.end().catch(() => undefined);
  }

  private connected(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    return (this.connecting ??= this.connect().finally(() => (this.connecting = null)));
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, null));
    client.on('notification', () => {
      for (const listener of this.listeners) listener();
    });
    try {
      await client.connect();
      for (const owner of this.owners) {
        const { rows } = await client.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
          [this.lockClass, owner],
        );
        if (!rows[0]!.locked) {
          this.logger.error(
            { owner },
            'after reconnecting, the liveness lock of this worker is held by another session: its running tasks may be taken over by other processes until the lock is free',
          );
        }
      }
      if (this.listeners.size > 0) await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new Error('the PostgreSQL store is closed');
    }
    this.client = client;
    if (this.failures > 0) {
      this.logger.info({ attempts: this.failures }, 'PostgreSQL liveness connection is back');
      // Tasks may have been added while nobody listened.
      for (const listener of this.listeners) listener();
    }
    this.failures = 0;
    return client;
  }

  /** The connection broke: reconnect in the background while there are locks or listeners. */
  private lost(client: pg.Client, error: Error | null): void {
    if (this.client !== client) return;
    this.client = null;
    if (this.closed) return;
    this.logger.warn(
      { err: error ?? undefined },
      'lost the PostgreSQL liveness connection; reconnecting (meanwhile other processes may take over the running tasks of this one, and new tasks are found by polling)',
    );
    this.retry();
  }

  private retry(): void {
    if (this.closed || (this.owners.size === 0 && this.listeners.size === 0)) return;
    const delay = RECONNECT_DELAYS[Math.min(this.failures, RECONNECT_DELAYS.length - 1)]!;
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.connected().catch((error: unknown) => {
        this.logger.debug({ err: error }, 'reconnecting the PostgreSQL liveness connection failed');
        this.retry();
      });
    }, delay).unref();
  }
}
