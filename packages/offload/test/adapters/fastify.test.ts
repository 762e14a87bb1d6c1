import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  createRuntime,
  defineTask,
  InvalidOptionError,
  InvalidPayloadError,
  memoryStore,
  StoreUnavailableError,
  type Runtime,
  type Store,
} from '../../src/index.js';
import { Background, BackgroundCommitError, offload } from '../../src/fastify/index.js';
import { kAnsweredRequest } from '../../src/runtime/runtime.js';
import { captureLogger, nextEvent, waitUntil } from '../helpers.js';

const apps: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const seen: unknown[] = [];
const record = defineTask<{ n: number }>({
  name: 'record',
  run: (payload) => void seen.push(payload),
});

/** An app with the plugin on a fresh memory store; the runtime is not started unless asked. */
async function appWith(
  options: { start?: boolean; store?: Store } = {},
): Promise<{ app: FastifyInstance; runtime: Runtime }> {
  seen.length = 0;
  const runtime = createRuntime({
    store: options.store ?? memoryStore(),
    tasks: [record],
    logger: captureLogger(),
    shutdownGrace: 0,
  });
  const app = Fastify();
  apps.push(app);
  await app.register(offload, { runtime, start: options.start ?? false });
  return { app, runtime };
}

async function stateCounts(runtime: Runtime): Promise<number> {
  return (await runtime.list()).tasks.length;
}

describe('offload/fastify', () => {
  it('stores the tasks a handler adds before the response is sent', async () => {
    const { app, runtime } = await appWith();
    let storedWhenSent = -1;
    app.addHook('onSend', async () => {
      storedWhenSent = await stateCounts(runtime);
    });
    app.post('/', async (request) => {
      request.background.add(record, { n: 1 });
      request.background.add(record, { n: 2 });
      assert.equal(request.background.size, 2);
      return { ok: true };
    });
    const response = await app.inject({ method: 'POST', url: '/' });
    assert.equal(response.statusCode, 200);
    assert.equal(
      storedWhenSent,
      2,
      'both tasks were stored before onSend hooks registered after the plugin ran',
    );
    await runtime.drain();
    assert.deepEqual(seen, [{ n: 1 }, { n: 2 }]);
  });

  it('schedules nothing when the handler throws, or replies with an error', async () => {
    const { app, runtime } = await appWith();
    app.post('/throws', async (request) => {
      request.background.add(record, { n: 1 });
      throw new Error('boom');
    });
    app.post('/sends-error', (request, reply) => {
      request.background.add(record, { n: 2 });
      reply.send(Object.assign(new Error('nope'), { statusCode: 422 }));
    });
    assert.equal((await app.inject({ method: 'POST', url: '/throws' })).statusCode, 500);
    assert.equal((await app.inject({ method: 'POST', url: '/sends-error' })).statusCode, 422);
    assert.equal(await stateCounts(runtime), 0);
    await runtime.drain();
    assert.deepEqual(seen, []);
  });

  it('stores the tasks of a reply the handler sends itself, whatever its status, as FastAPI', async () => {
    const { app, runtime } = await appWith();
    app.post('/refused', async (request, reply) => {
      request.background.add(record, { n: 1 });
      return reply.code(400).send({ ok: false });
    });
    assert.equal((await app.inject({ method: 'POST', url: '/refused' })).statusCode, 400);
    assert.equal(await stateCounts(runtime), 1);
  });

  it('stores the tasks of a reply sent around Fastify once it is sent, with a warning', async () => {
    const lines: { level: number; msg: string }[] = [];
    const runtime = createRuntime({
      store: memoryStore(),
      tasks: [record],
      logger: captureLogger(),
    });
    const app = Fastify({
      loggerInstance: pino(
        { level: 'warn' },
        { write: (line: string) => void lines.push(JSON.parse(line)) },
      ) as FastifyBaseLogger,
    });
    apps.push(app);
    await app.register(offload, { runtime, start: false });
    let later: unknown;
    app.get('/hijacked', async (request, reply) => {
      request.background.add(record, { n: 1 });
      reply.hijack();
      reply.raw.end('streamed');
      setImmediate(() => {
        try {
          request.background.add(record, { n: 3 });
        } catch (error) {
          later = error;
        }
      });
    });
    app.get('/raw', async (request, reply) => {
      request.background.add(record, { n: 2 });
      reply.raw.end('raw');
      return reply;
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    for (const path of ['/hijacked', '/raw']) {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      assert.equal(response.status, 200);
      await response.text();
    }
    await waitUntil(
      'both late commits and the refused add',
      async () => (await stateCounts(runtime)) === 2 && later !== undefined,
    );
    assert.match((later as Error).message, /after the response was sent/);
    assert.equal(
      lines.filter((line) => /stored after it/.test(line.msg)).length,
      2,
      'each late commit is logged',
    );
    await runtime.drain();
    assert.deepEqual(
      seen.slice().sort((a, b) => (a as { n: number }).n - (b as { n: number }).n),
      [{ n: 1 }, { n: 2 }],
    );
  });

  it('commits early on request, so a handler can answer with the task id', async () => {
    const { app, runtime } = await appWith();
    app.post('/', async (request) => {
      request.background.add(record, { n: 7 });
      const [task] = await request.background.commit();
      assert.equal(request.background.size, 0);
      return { id: task!.id };
    });
    const { id } = (await app.inject({ method: 'POST', url: '/' })).json<{ id: string }>();
    assert.equal((await runtime.get(id))?.state, 'queued');
    assert.equal(await stateCounts(runtime), 1, 'committing early does not store the task twice');
  });

  it('answers 503, not ok, when the store cannot take the tasks', async () => {
    const store = memoryStore();
    const { app, runtime } = await appWith({ store });
    store.enqueue = () => Promise.reject(new Error('disk full'));
    app.post('/', async (request) => {
      request.background.add(record, { n: 1 });
      return { ok: true };
    });
    let error: unknown;
    app.setErrorHandler((e, _request, reply) => {
      error = e;
      return reply
        .code((e as { statusCode?: number }).statusCode ?? 500)
        .send({ code: (e as BackgroundCommitError).code });
    });
    const response = await app.inject({ method: 'POST', url: '/' });
    assert.equal(response.statusCode, 503);
    assert.deepEqual(response.json(), { code: 'STORE_UNAVAILABLE' });
    assert.ok(error instanceof BackgroundCommitError);
    assert.match(error.message, /disk full/);
    await runtime.drain();
    assert.deepEqual(seen, []);
  });

  it('says what to check when the store reports it cannot serve', async () => {
    const store = memoryStore();
    const { app } = await appWith({ store });
    const hint = 'the disk of the SQLite database is full: free space on it';
    store.enqueue = () =>
      Promise.reject(
        new StoreUnavailableError('database or disk is full', {
          reason: 'disk-full',
          hint,
          driverCode: 'SQLITE_FULL',
        }),
      );
    app.post('/', async (request) => {
      request.background.add(record, { n: 1 });
      return { ok: true };
    });
    const response = await app.inject({ method: 'POST', url: '/' });
    assert.equal(response.statusCode, 503);
    const { message } = response.json<{ message: string }>();
    assert.ok(message.endsWith(`(database or disk is full); ${hint}`), message);
  });

  it('refuses at the call a task that is neither a defineTask definition nor a task name', async () => {
    const { app, runtime } = await appWith();
    app.post('/', async (request) => {
      request.background.add((async () => {}) as never, { n: 1 } as never);
      return { ok: true };
    });
    const response = await app.inject({ method: 'POST', url: '/' });
    assert.equal(response.statusCode, 500);
    assert.match(
      response.json<{ message: string }>().message,
      /^request\.background\.add task: must be a defineTask\(\.\.\.\) definition, or the name of one, got a function\. Define the task once/,
    );

    const background = new Background(runtime);
    for (const [task, got] of [
      [function sendWelcome() {}, 'a function (sendWelcome)'],
      [{ name: 'record' }, 'an object that is not a task definition'],
      [{ run: () => {} }, 'an object that is not a task definition'],
      [undefined, 'undefined'],
      [null, 'null'],
      [42, '42'],
      ['', 'the string "", which is no task name'],
    ] as const) {
      assert.throws(
        () => background.add(task as never, { n: 1 } as never),
        (error: unknown) =>
          error instanceof InvalidOptionError &&
          error.message.includes(`definition, or the name of one, got ${got}. Define`),
        String(got),
      );
    }
    background.add(record, { n: 1 });
    background.add('record', { n: 2 });
    assert.equal(background.size, 2, 'a definition and a task name are taken');
    await background.commit();
    assert.equal(await stateCounts(runtime), 2);
  });

  it('stores several tasks of one request all or none, and refuses a payload that is not JSON', async () => {
    const { app, runtime } = await appWith();
    app.post('/', async (request) => {
      request.background.add(record, { n: 1 });
      request.background.add(record, { n: new Date(0) as unknown as number });
      return { ok: true };
    });
    let error: unknown;
    app.setErrorHandler((e, _request, reply) => {
      error = e;
      return reply.code(500).send({});
    });
    assert.equal((await app.inject({ method: 'POST', url: '/' })).statusCode, 500);
    assert.ok(
      error instanceof InvalidPayloadError,
      'a bad payload is a bug of the handler, not a store failure',
    );
    assert.equal(await stateCounts(runtime), 0);
  });

  it('refuses tasks added after the response was sent', async () => {
    const { app } = await appWith();
    let late: unknown;
    app.addHook('onResponse', async (request) => {
      try {
        request.background.add(record, { n: 1 });
      } catch (error) {
        late = error;
      }
    });
    app.get('/', async () => 'ok');
    await app.inject('/');
    assert.match((late as Error).message, /after the response was sent/);
  });

  it('starts the runtime when ready, runs tasks after answering, and stops it on close', async () => {
    const { app, runtime } = await appWith({ start: true });
    app.post('/', async (request) => {
      request.background.add(record, { n: 3 });
      return { ok: true };
    });
    const succeeded = nextEvent(runtime, 'task:success');
    assert.equal((await app.inject({ method: 'POST', url: '/' })).statusCode, 200);
    await succeeded;
    assert.deepEqual(seen, [{ n: 3 }]);
    await app.close();
    await assert.rejects(runtime.enqueue(record, { n: 4 }), { code: 'RUNTIME_STOPPED' });
  });

  it('starts a task only once its response has been written', async () => {
    const { app, runtime } = await appWith({ start: true });
    const order: string[] = [];
    app.addHook('onResponse', async () => void order.push('response written'));
    runtime.on('task:start', () => void order.push('task started'));
    app.post('/', async (request) => {
      request.background.add(record, { n: 1 });
      return { ok: true };
    });
    const succeeded = nextEvent(runtime, 'task:success');
    await app.inject({ method: 'POST', url: '/' });
    await succeeded;
    assert.deepEqual(order, ['response written', 'task started']);
  });

  it('tells the runtime of every request it answers, so that a draining backlog shares the loop', async () => {
    const { app, runtime } = await appWith();
    let answered = 0;
    Object.defineProperty(runtime, kAnsweredRequest, { value: () => void (answered += 1) });
    app.post('/task', async (request) => {
      request.background.add(record, { n: 1 });
      return { ok: true };
    });
    app.get('/plain', async () => ({ ok: true }));
    app.get('/fails', async () => {
      throw new Error('boom');
    });
    for (const [method, url, status] of [
      ['POST', '/task', 200],
      ['GET', '/plain', 200],
      ['GET', '/fails', 500],
      ['GET', '/missing', 404],
    ] as const) {
      assert.equal((await app.inject({ method, url })).statusCode, status);
    }
    assert.equal(answered, 4);
  });
});
