import assert from 'node:assert/strict';
import { stripVTControlCharacters } from 'node:util';
import { describe, it } from 'node:test';
import { createLogger, type LoggerOptions } from '../../src/logger.js';

/** Logs one line with a logger made with `options`, and returns what it wrote, colours removed. */
function written(options: Omit<LoggerOptions, 'level' | 'destination'>): string {
  const chunks: string[] = [];
  const logger = createLogger({
    level: 'info',
    ...options,
    destination: { write: (chunk: string) => void chunks.push(chunk) },
  });
  logger.child({ taskId: '42' }).warn({ apiKey: 'secret-key', attempt: 2 }, 'delivery failed');
  logger.debug('below the level');
  return stripVTControlCharacters(chunks.join(''));
}

describe('the service logger', () => {
  it('writes readable lines to a terminal', () => {
    const text = written({ isTTY: true });
    assert.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(offload\): delivery failed\n/);
    assert.match(text, /^ {4}taskId: "42"$/m);
    assert.match(text, /^ {4}attempt: 2$/m);
    assert.match(text, /apiKey: "\[redacted\]"/);
    assert.doesNotMatch(text, /secret-key|below the level/);
  });

  it('writes one JSON object a line anywhere else', () => {
    const text = written({ isTTY: false });
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.deepEqual(
      [line.level, line.name, line.msg, line.taskId, line.attempt, line.apiKey],
      [40, 'offload', 'delivery failed', '42', 2, '[redacted]'],
    );
  });

  it('takes the format it is given, whatever stdout is', () => {
    assert.doesNotThrow(() => JSON.parse(written({ isTTY: true, pretty: false })));
    assert.match(written({ isTTY: false, pretty: true }), /^\[[\d:.]+\] WARN \(offload\): /);
  });
});
