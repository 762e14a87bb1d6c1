import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { withBackground } from '../../src/node/index.js';
import { adapterTable, record } from './table.js';
import { listening, thrown, writeReply } from './servers.js';
import { createRuntime, InvalidOptionError, memoryStore } from '../../src/index.js';
import { captureLogger } from '../helpers.js';

adapterTable({
  name: 'offload/node',
  serve: ({ runtime, start, routes }) =>
    listening(
      createServer(
        withBackground(
          runtime,
          async (req, res, background) => {
            const route = routes[new URL(req.url!, 'http://x').pathname];
            if (!route) return res.writeHead(404).end();
            const reply = await route(background);
            if ('throws' in reply) throw thrown(reply, 'statusCode');
            writeReply(res, reply);
          },
          { start, logger: captureLogger() },
        ),
      ),
    ),
});

describe('offload/node', () => {
  it('logs what the handler threw, and answers the envelope without its message', async () => {
    const logger = captureLogger();
    const runtime = createRuntime({ store: memoryStore(), logger: captureLogger() });
    const served = await listening(
      createServer(
        withBackground(
          runtime,
          () => {
            throw new Error('secret detail');
          },
          { start: false, logger },
        ),
      ),
    );
    try {
      const response = await fetch(`${served.url}/x?y=1`);
      assert.equal(response.status, 500);
      assert.deepEqual(await response.json(), {
        ok: false,
        error: { code: 'INTERNAL_ERROR', message: 'the server failed to answer this request' },
      });
      const [entry] = logger.entries;
      assert.equal(entry?.level, 'error');
      assert.equal(entry?.fields.url, '/x?y=1');
      assert.match((entry?.fields.err as Error).message, /secret detail/);
    } finally {
      await served.close();
      await runtime.stop();
    }
  });

  it('answers 503 to every request when the runtime cannot start', async () => {
    const store = memoryStore();
    store.open = () => Promise.reject(new Error('no disk'));
    const runtime = createRuntime({ store, logger: captureLogger() });
    const listener = withBackground(runtime, (_req, res) => void res.end('ok'), {
      logger: captureLogger(),
    });
    await runtime.start().catch(() => {});
    const served = await listening(createServer(listener));
    try {
      const response = await fetch(served.url);
      assert.equal(response.status, 503);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'STORE_UNAVAILABLE');
      assert.match(error.message, /no disk/);
    } finally {
      await served.close();
      await runtime.stop().catch(() => {});
    }
  });

  it('refuses an unknown option at once, naming it and the one meant', () => {
    const runtime = createRuntime({ store: memoryStore(), logger: captureLogger() });
    assert.throws(
      () => withBackground(runtime, () => {}, { strat: false } as never),
      (error: unknown) =>
        error instanceof InvalidOptionError &&
        /offload\/node options\.strat: is not an option; did you mean "start"\?/.test(
          error.message,
        ),
    );
    assert.throws(
      () => withBackground({} as never, () => {}),
      /offload\/node options\.runtime: must be a runtime made by createRuntime\(\)/,
    );
    assert.throws(
      () => withBackground(runtime, () => {}, { stop: 'yes' } as never),
      /offload\/node options\.stop: must be true or false, got "yes"/,
    );
  });

  it('cuts off a held response whose later write throws, without an unhandled rejection', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const served = await listening(
      createServer(
        withBackground(
          runtime,
          (_req, res, background) => {
            background.add(record, { n: 1 });
            res.writeHead(200);
            res.write('partial');
            res.writeHead(500); // throws once replayed: the head is out
            res.end();
          },
          { start: false, logger: captureLogger() },
        ),
      ),
    );
    try {
      await assert.rejects(
        async () => (await fetch(served.url)).text(),
        'the response is cut off before its end',
      );
      assert.equal((await runtime.list()).tasks.length, 1);
    } finally {
      await served.close();
      await runtime.stop();
    }
  });
});
