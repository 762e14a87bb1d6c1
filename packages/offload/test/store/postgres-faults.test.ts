/**
 * A PostgreSQL server that cannot serve: the store reports the driver's error as a
 * `StoreUnavailableError` (why, what to check, the driver's code, the driver's error as its
 * cause), so that nothing above it reads a driver code. The server goes away behind a TCP proxy
 * on loopback.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../../src/errors/store-unavailable.js';
import { postgresStoreError } from '../../src/postgres/errors.js';
import { postgresStore, type PostgresStore } from '../../src/postgres/index.js';
import { TcpProxy } from '../fixtures/tcp-proxy.js';
import { captureLogger, newStoredTask, waitUntil } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

describe('postgres store: a server that cannot serve', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A store on a schema of its own, opened through a proxy that the test can take away. */
  async function behindProxy(): Promise<{
    store: PostgresStore;
    proxy: TcpProxy;
    logger: ReturnType<typeof captureLogger>;
    url: string;
  }> {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await TcpProxy.start(Number(target.port || 5432));
    cleanups.push(() => proxy.close());
    target.host = `127.0.0.1:${proxy.port}`;
    const schema = uniqueSchema('faults');
    cleanups.push(() => dropSchema(schema));
    const logger = captureLogger();
    const url = target.toString();
    const store = postgresStore({ connectionString: url, schema, poolSize: 2, logger });
    await store.open();
    cleanups.push(() => store.close());
    return { store, proxy, logger, url };
  }

  function assertUnreachable(error: unknown, driverCode: string | null): true {
    assert.ok(
      error instanceof StoreUnavailableError,
      `not a StoreUnavailableError: ${String(error)}`,
    );
    assert.equal(error.code, 'STORE_UNAVAILABLE');
    assert.equal(error.reason, 'unreachable');
    assert.equal(error.driverCode, driverCode);
    assert.match(error.hint, /check that (it|the server) is up and reachable/);
    assert.ok(error.cause instanceof Error, 'the driver error is the cause');
    assert.equal((error.cause as { code?: string }).code, driverCode ?? undefined);
    assert.equal(error.message, error.cause.message);
    return true;
  }

  it('reports a connection refused as StoreUnavailableError, with the driver error as its cause', async () => {
    const { store, proxy, logger } = await behindProxy();
    await proxy.close();
    // The connection the pool kept from open() breaks first; every call then connects anew.
    await waitUntil('the idle connection to break', async () =>
      logger.entries.some((entry) => /idle PostgreSQL connection broke/.test(entry.msg ?? '')),
    );
    await assert.rejects(store.get('1'), (error) => assertUnreachable(error, 'ECONNREFUSED'));
    await assert.rejects(store.ping(), (error) => assertUnreachable(error, 'ECONNREFUSED'));
    await assert.rejects(store.enqueue([newStoredTask()]), (error) =>
      assertUnreachable(error, 'ECONNREFUSED'),
    );
    await assert.rejects(store.registerWorker('w1'), (error) =>
      assertUnreachable(error, 'ECONNREFUSED'),
    );
  });

  it("reports the caller's connection breaking in their transaction as StoreUnavailableError, without a driver code", async () => {
    const { store, proxy, url } = await behindProxy();
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined); // reported to the call below
    await client.connect();
    cleanups.push(() => client.end().catch(() => undefined));
    await client.query('BEGIN');
    proxy.cut();
    await assert.rejects(store.enqueue([newStoredTask()], client), (error) =>
      assertUnreachable(error, null),
    );
  });
});

describe('postgres store: what it reports of a driver error', () => {
  const driverError = (code: string | undefined, message = 'the driver says') =>
    Object.assign(new Error(message), code === undefined ? {} : { code });

  for (const [code, reason] of [
    ['ECONNREFUSED', 'unreachable'],
    ['ECONNRESET', 'unreachable'],
    ['ENOTFOUND', 'unreachable'],
    ['08006', 'unreachable'],
    ['57P01', 'shutting-down'],
    ['57P03', 'shutting-down'],
    ['53300', 'out-of-resources'],
    ['53100', 'out-of-resources'],
  ] as const) {
    it(`reports ${code} as unavailable (${reason}), keeping the driver's code, message and error`, () => {
      const original = driverError(code);
      const reported = postgresStoreError(original);
      assert.ok(reported instanceof StoreUnavailableError);
      assert.deepEqual(
        [reported.reason, reported.driverCode, reported.message, reported.cause],
        [reason, code, 'the driver says', original],
      );
      assert.ok(reported.hint.length > 0);
      assert.equal(postgresStoreError(reported), reported, 'reported once');
    });
  }

  for (const [message, reason] of [
    ['Connection terminated unexpectedly', 'unreachable'],
    ['Client has encountered a connection error and is not queryable', 'unreachable'],
    ['timeout exceeded when trying to connect', 'timed-out'],
    ['Connection terminated due to connection timeout', 'timed-out'],
  ] as const) {
    it(`reports "${message}" (node-postgres, no code) as unavailable (${reason})`, () => {
      const reported = postgresStoreError(driverError(undefined, message));
      assert.ok(reported instanceof StoreUnavailableError);
      assert.deepEqual([reported.reason, reported.driverCode], [reason, null]);
    });
  }

  it('returns any other error as it is: a bug or a bad request is no outage', () => {
    for (const error of [
      driverError('23505', 'duplicate key value violates unique constraint'),
      driverError('42P01', 'relation "offload.tasks" does not exist'),
      driverError('22P02', 'invalid input syntax for type bigint'),
      driverError(undefined, 'Connection terminated'),
      new TypeError('x is undefined'),
      'a string',
      null,
    ]) {
      assert.equal(postgresStoreError(error), error);
    }
  });
});
