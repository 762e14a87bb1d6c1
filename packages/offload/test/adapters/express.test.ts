import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import express from 'express';
import { offload, offloadErrors } from '../../src/express/index.js';
import { createRuntime, memoryStore } from '../../src/index.js';
import { captureLogger } from '../helpers.js';
import { listening, thrown, writeReply } from './servers.js';
import { adapterTable, record } from './table.js';

adapterTable({
  name: 'offload/express',
  serve: ({ runtime, start, routes }) => {
    const app = express();
    app.use(offload({ runtime, start }));
    for (const [path, route] of Object.entries(routes)) {
      app.all(path, async (req, res) => {
        const reply = await route(req.background);
        if ('throws' in reply) throw thrown(reply, 'status');
        writeReply(res, reply);
      });
    }
    app.use(offloadErrors());
    return listening(createServer(app));
  },
});

describe('offload/express', () => {
  it('stores nothing for a request passed on with next(error), with the app’s own error handler', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = express();
    app.use(offload({ runtime, start: false }));
    app.post('/', (req, _res, next) => {
      req.background.add(record, { n: 1 });
      next(new Error('refused'));
    });
    app.use(offloadErrors());
    app.use(((error, _req, res, _next) => {
      res.status(418).json({ message: (error as Error).message });
    }) as express.ErrorRequestHandler);
    const served = await listening(createServer(app));
    try {
      const response = await fetch(served.url, { method: 'POST' });
      assert.equal(response.status, 418);
      assert.deepEqual(await response.json(), { message: 'refused' });
      assert.equal((await runtime.list()).tasks.length, 0);
    } finally {
      await served.close();
      await runtime.stop();
    }
  });

  it('answers what res.sendFile, res.redirect and a stream write, once their tasks are stored', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = express();
    app.use(offload({ runtime, start: false }));
    app.get('/file', (req, res) => {
      req.background.add(record, { n: 1 });
      res.sendFile(import.meta.filename);
    });
    app.get('/redirect', (req, res) => {
      req.background.add(record, { n: 2 });
      res.redirect(303, '/file');
    });
    app.get('/stream', (req, res) => {
      req.background.add(record, { n: 3 });
      res.write('a');
      setImmediate(() => res.end('b'));
    });
    const served = await listening(createServer(app));
    try {
      const file = await fetch(`${served.url}/file`);
      assert.equal(file.status, 200);
      assert.match(await file.text(), /res\.sendFile, res\.redirect and a stream/);
      const redirect = await fetch(`${served.url}/redirect`, { redirect: 'manual' });
      assert.equal(redirect.status, 303);
      assert.equal(redirect.headers.get('location'), '/file');
      await redirect.arrayBuffer();
      assert.equal(await (await fetch(`${served.url}/stream`)).text(), 'ab');
      assert.equal((await runtime.list()).tasks.length, 3);
    } finally {
      await served.close();
      await runtime.stop();
    }
  });

  it('keeps a wrapper that a later middleware puts around res.write and res.end', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = express();
    app.use(offload({ runtime, start: false }));
    // As compression does: the response's methods, wrapped per request after offload's.
    app.use((_req, res, next) => {
      const write = res.write;
      const end = res.end;
      const upper = (chunk: unknown) => (typeof chunk === 'string' ? chunk.toUpperCase() : chunk);
      res.write = function (this: typeof res, chunk: unknown, ...rest: unknown[]) {
        return (write as (...args: unknown[]) => boolean).call(this, upper(chunk), ...rest);
      } as typeof res.write;
      res.end = function (this: typeof res, chunk: unknown, ...rest: unknown[]) {
        return (end as (...args: unknown[]) => typeof res).call(this, upper(chunk), ...rest);
      } as typeof res.end;
      next();
    });
    app.get('/', (req, res) => {
      req.background.add(record, { n: 1 });
      res.write('a');
      setImmediate(() => {
        res.write('b');
        res.end('c');
      });
    });
    const served = await listening(createServer(app));
    try {
      assert.equal(await (await fetch(served.url)).text(), 'ABC');
      assert.equal((await runtime.list()).tasks.length, 1);
    } finally {
      await served.close();
      await runtime.stop();
    }
  });

  it('holds the responses of a sub-app mounted under the app that uses the middleware', async () => {
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = express();
    app.use(offload({ runtime, start: false }));
    const api = express();
    api.post('/report', (req, res) => {
      req.background.add(record, { n: 1 });
      res.json({ ok: true });
    });
    app.use('/api', api);
    const plain = express(); // no offload(): its responses are not held
    plain.get('/', (_req, res) => void res.send('plain'));
    const served = await listening(createServer(app));
    const other = await listening(createServer(plain));
    try {
      const response = await fetch(`${served.url}/api/report`, { method: 'POST' });
      assert.equal(response.status, 200);
      assert.equal((await runtime.list()).tasks.length, 1);
      assert.equal(await (await fetch(other.url)).text(), 'plain');
    } finally {
      await served.close();
      await other.close();
      await runtime.stop();
    }
  });
});
