/**
 * The log while the store cannot serve: every request still gets its 503 envelope, but the log
 * gets one full line per fault and then a count per interval, never a line (and stacks) per
 * request, as it is often on the very disk that is full.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { memoryStore, SECOND } from '../../../../packages/offload/src/index.js';
import { sqliteStoreError } from '../../../../packages/offload/src/sqlite/errors.js';
import { StoreFaultLog } from '../../src/store-fault-log.js';
import { testService } from '../fixtures/service-harness.js';

const NOTIFY = '/api/notifications/notify';

/** A driver error as better-sqlite3 throws it, and the SQLite store reports it. */
function sqliteError(code: string, message: string): Error {
  return sqliteStoreError(Object.assign(new Error(message), { code })) as Error;
}

describe('the log under a store fault', () => {
  it('answers 1,000 notify requests on a full disk with the 503 envelope, logging one line and a count', async () => {
    const store = memoryStore();
    store.enqueue = async () => {
      throw sqliteError('SQLITE_FULL', 'database or disk is full');
    };
    const s = await testService({ logLevel: 'info' }, store);
    const from = s.logs.lines.length;
    let closed = false;
    try {
      for (let i = 0; i < 1000; i++) {
        const response = await s.app.inject({ method: 'POST', url: NOTIFY });
        assert.equal(response.statusCode, 503);
        assert.equal(response.headers['retry-after'], '5');
        const body = response.json<{ ok: boolean; error: { code: string; message: string } }>();
        assert.equal(body.ok, false);
        assert.equal(body.error.code, 'STORE_UNAVAILABLE');
        assert.match(body.error.message, /disk of the SQLite database is full: free space on it/);
      }
      const during = s.logs.lines.slice(from);
      const bytes = during.reduce((sum, line) => sum + JSON.stringify(line).length, 0);
      assert.ok(during.length <= 3, `${during.length} lines:\n${s.logs.tail()}`);
      assert.ok(bytes <= 2048, `${bytes} bytes of log`);
      assert.ok(!JSON.stringify(during).includes('"stack"'), 'no stacks for a known store fault');
      const [first] = during;
      assert.equal(first?.level, 50);
      assert.deepEqual(first?.fault, { code: 'SQLITE_FULL', message: 'database or disk is full' });
      assert.match(
        first?.msg ?? '',
        /^store unavailable: answered 503 \(SQLITE_FULL: .*free space/,
      );

      await s.close();
      closed = true;
      // What is counted and not written yet is written on close.
      const counted = s.logs.lines
        .slice(from)
        .filter((line) => /more requests? answered 503/.test(line.msg))
        .reduce((sum, line) => sum + (line.count as number), 0);
      assert.equal(counted, 999);
    } finally {
      if (!closed) await s.close();
    }
  });
});

describe('StoreFaultLog', () => {
  function setUp() {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const logger = pino({ level: 'info' }, stream);
    let now = 1_000_000;
    const log = new StoreFaultLog(logger, { clock: { now: () => now }, interval: 10 * SECOND });
    const request = () => ({ log: logger }) as unknown as FastifyRequest;
    const messages = () => lines.map((line) => line.msg as string);
    return { log, request, messages, advance: (ms: number) => (now += ms) };
  }
  const full = sqliteError('SQLITE_FULL', 'database or disk is full');
  /** A store fault inside the error the service answers with, as a commit that failed wraps it. */
  const wrapped = (cause: Error) => Object.assign(new Error('could not store'), { cause });

  it('writes a fault once in full, then at most one count an interval, and the rest on close', () => {
    const { log, request, messages, advance } = setUp();
    for (let i = 0; i < 1234; i++) assert.equal(log.answered(request(), wrapped(full)), true);
    assert.equal(messages().length, 1);
    advance(10 * SECOND);
    log.answered(request(), wrapped(full));
    assert.deepEqual(messages().slice(1), [
      'store unavailable: 1,234 more requests answered 503 in the last 10 s (SQLITE_FULL: the disk of the SQLite database is full: free space on it)',
    ]);
    advance(3 * SECOND);
    for (let i = 0; i < 5; i++) log.answered(request(), wrapped(full));
    assert.equal(messages().length, 2, 'within the interval, only counted');
    log.close();
    assert.match(
      messages()[2]!,
      /^store unavailable: 5 more requests answered 503 in the last 3 s/,
    );
  });

  it('keeps faults of different codes apart, and leaves other errors to the caller', () => {
    const { log, request, messages } = setUp();
    const counted = request();
    log.answered(request(), full);
    log.answered(counted, full);
    log.answered(request(), sqliteError('SQLITE_IOERR_WRITE', 'disk I/O error'));
    assert.equal(log.answered(request(), new TypeError('a bug')), false);
    assert.equal(log.wasCounted(counted), true);
    assert.equal(messages().length, 2);
    assert.match(
      messages()[1]!,
      /^store unavailable: answered 503 \(SQLITE_IOERR_WRITE: .*I\/O error/,
    );
    log.close();
    assert.match(messages()[2]!, /^store unavailable: 1 more request answered 503 .*SQLITE_FULL/);
  });

  it('ends a fault after an interval without answers: its next answer is written in full again', () => {
    const { log, request, messages, advance } = setUp();
    log.answered(request(), full);
    log.answered(request(), full);
    advance(10 * SECOND);
    log.summarize();
    assert.match(messages()[1]!, /^store unavailable: 1 more request answered 503/);
    advance(10 * SECOND);
    log.summarize();
    assert.equal(messages().length, 2, 'nothing counted: no line');
    log.answered(request(), full);
    assert.match(messages()[2]!, /^store unavailable: answered 503 \(SQLITE_FULL/);
    log.close();
    assert.equal(messages().length, 3);
  });
});
