import pg from 'pg';
import { SECOND } from '../time.js';
import type { Logger } from '../types.js';
import { quoteIdentifier } from './migrations.js';

/**
 * How long to wait before each attempt to connect again after the connection was lost, in ms: at
 * once, then at most `RECONNECT_CAP` apart, so that a live process holds its locks again soon
 * after the server takes connections, well within the `OWNER_GRACE` that other processes give it.
 */
const RECONNECT_DELAYS = [0, 100, 250, 500];
export const RECONNECT_CAP = SECOND;
/** How often to try again to take a lock that another session held when this one reconnected. */
const RELOCK_INTERVAL = SECOND;

/**
 * One dedicated connection per store that (1) holds a session advisory lock per registered owner,
 * which PostgreSQL releases the moment the session ends (the process died, or lost its
 * connection), so rescue can tell a dead owner from a live one without waiting for leases to
 * expire; and (2) LISTENs for the trigger that tells runners tasks were added. It reconnects by
 * itself, taking its locks and LISTEN again; a lock that another session holds by then (this
 * process's own old session, not yet ended by the server) is tried again every second.
 */
export class Liveness {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly owners = new Set<string>();
  /** Registered owners whose lock another session held when this connection was made. */
  private readonly unheld = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly feedListeners = new Set<(feed: string | null) => void>();
  private closed = false;
  private failures = 0;
  /** How many connections were made: tells one session of this connection from the next. */
  private sessions = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private relockTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly channel: string,
    private readonly lockClass: number,
    private readonly logger: Logger,
    /** The channel appends to feeds are told on (see feeds.ts), as PostgreSQL names it. */
    private readonly feedChannel: string,
  ) {}

  /** Takes the owner's lock; throws when another live session holds it (the owner is taken). */
  async register(owner: string): Promise<void> {
    const client = await this.connected();
    if (!(await this.lock(client, owner))) {
      throw new Error(
        `the worker name ${JSON.stringify(owner)} is in use by another live process on this database; give each process its own owner`,
      );
    }
    this.owners.add(owner);
  }

  async unregister(owner: string): Promise<void> {
    if (!this.owners.delete(owner)) return;
    // A lock that another session holds is not this one's to give back.
    if (this.unheld.delete(owner) || this.client === null) return;
    await this.client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [this.lockClass, owner]);
  }

  /** Calls `listener` whenever tasks were added to the store, by any process. */
  async watch(listener: () => void): Promise<void> {
    this.listeners.add(listener);
    if (this.listeners.size === 1) await (await this.connected()).query(`LISTEN ${this.channel}`);
  }

  /** Calls `listener` with the name of each feed appended to, by any process. */
  async watchFeeds(listener: (feed: string | null) => void): Promise<void> {
    this.feedListeners.add(listener);
    if (this.feedListeners.size === 1) await (await this.connected()).query(this.listenFeeds());
  }

  private listenFeeds(): string {
    return `LISTEN ${quoteIdentifier(this.feedChannel)}`;
  }

  /**
   * The current session of the connection, made first if need be: the number changes whenever the
   * connection is made again, so that a caller can tell whether it lasted between two moments.
   */
  async session(): Promise<number> {
    await this.connected();
    return this.sessions;
  }

  /** The current session's number, or null while there is no connection. */
  get currentSession(): number | null {
    return this.client ? this.sessions : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.relockTimer);
    const client = this.client ?? (await this.connecting?.catch(() => null));
    this.client = null;
    this.owners.clear();
    this.unheld.clear();
    this.listeners.clear();
    this.feedListeners.clear();
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
    client.on('notification', ({ channel, payload }) => {
      if (channel === this.feedChannel && payload) {
        for (const listener of this.feedListeners) listener(payload);
      } else {
        for (const listener of this.listeners) listener();
      }
    });
    try {
      await client.connect();
      this.unheld.clear();
      for (const owner of this.owners) {
        if (await this.lock(client, owner)) continue;
        this.unheld.add(owner);
        this.logger.error(
          { owner },
          'after reconnecting, the liveness lock of this worker is held by another session; trying again every second (other processes take its tasks only once the lock has been free for a few seconds, or its leases expired)',
        );
      }
      if (this.listeners.size > 0) await client.query(`LISTEN ${this.channel}`);
      if (this.feedListeners.size > 0) await client.query(this.listenFeeds());
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
    this.sessions += 1;
    if (this.unheld.size > 0) this.relockLater();
    if (this.failures > 0) {
      this.logger.info({ attempts: this.failures }, 'PostgreSQL liveness connection is back');
      // Tasks may have been added, and feeds appended to, while nobody listened.
      for (const listener of this.listeners) listener();
      for (const listener of this.feedListeners) listener(null);
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
      'lost the PostgreSQL liveness connection; reconnecting (other processes leave the running tasks of this one alone for a few seconds; new tasks are found by polling meanwhile)',
    );
    this.retry();
  }

  private retry(): void {
    const idle = this.owners.size === 0 && this.listeners.size === 0;
    if (this.closed || (idle && this.feedListeners.size === 0)) return;
    const delay = RECONNECT_DELAYS[this.failures] ?? RECONNECT_CAP;
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.connected().catch((error: unknown) => {
        this.logger.debug({ err: error }, 'reconnecting the PostgreSQL liveness connection failed');
        this.retry();
      });
    }, delay).unref();
  }

  private async lock(client: pg.Client, owner: string): Promise<boolean> {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked',
      [this.lockClass, owner],
    );
    return rows[0]!.locked;
  }

  private relockLater(): void {
    clearTimeout(this.relockTimer);
    this.relockTimer = setTimeout(() => {
      this.relock().catch((error: unknown) => {
        // The connection broke: reconnecting tries every lock again.
        this.logger.debug({ err: error }, 'taking back a liveness lock failed');
      });
    }, RELOCK_INTERVAL).unref();
  }

  /** Tries again the locks another session held; keeps trying while any is still held. */
  private async relock(): Promise<void> {
    const client = this.client;
    if (client === null || this.closed) return;
    for (const owner of [...this.unheld]) {
      if (!(await this.lock(client, owner))) continue;
      if (client !== this.client) return; // a lock of a session that ended: nothing held
      if (!this.unheld.delete(owner)) {
        // Unregistered meanwhile: this connection must not keep the owner's lock.
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [this.lockClass, owner]);
        continue;
      }
      this.logger.info({ owner }, 'took back the liveness lock of this worker');
    }
    if (this.unheld.size > 0 && client === this.client) this.relockLater();
  }
}
