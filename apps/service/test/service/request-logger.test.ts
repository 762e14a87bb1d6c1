import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RequestLogger, requestLogger } from '../../src/request-logger.js';

/** A pino logger at `level` whose lines are kept, parsed, and whose child() calls are counted. */
function capturing(level: string) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level, redact: ['authorization'] }, stream);
  let children = 0;
  const child = logger.child.bind(logger);
  logger.child = ((...args: Parameters<typeof child>) => {
    children += 1;
    return child(...args);
  }) as typeof logger.child;
  return { logger, lines, children: () => children };
}

describe('request logger', () => {
  it('makes no child for lines below the level, and one, with the request id, for the first line written', () => {
    const { logger, lines, children } = capturing('warn');
    const log = requestLogger(logger, { reqId: 'req-7' }, {});
    assert.ok(log instanceof RequestLogger);
    assert.equal(log.level, 'warn');
    log.debug({ step: 1 }, 'below');
    log.info({ step: 2 }, 'below');
    assert.equal(children(), 0);
    log.warn({ step: 3 }, 'written');
    log.error(new Error('boom'), 'written too');
    assert.equal(children(), 1);
    assert.deepEqual(
      lines.map((line) => [line.msg, line.reqId, line.level]),
      [
        ['written', 'req-7', 40],
        ['written too', 'req-7', 50],
      ],
    );
    assert.equal((lines[1]!.err as { message: string }).message, 'boom');
  });

  it("is pino's own child where a route sets a level of its own", () => {
    const { logger } = capturing('warn');
    const log = requestLogger(logger, { reqId: 'req-8' }, { level: 'debug' });
    assert.ok(!(log instanceof RequestLogger));
    assert.equal(log.level, 'debug');
  });
});
