/**
 * How the service holds client connections: MAX_CONNECTIONS and its default from the open-file
 * limit, connections over it closed as they come, idle ones closed early under pressure, and a
 * flood of idle connections against a real process that may open few files. Loopback only.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidOptionError } from '../../../../packages/offload/src/index.js';
import { loadConfig } from '../../src/config.js';
import {
  defaultMaxConnections,
  FALLBACK_MAX_CONNECTIONS,
  openFileLimit,
} from '../../src/connections.js';
import {
  listeningUrl,
  spawnCli,
  tempDir,
  testService,
  type Child,
  type TestService,
} from '../fixtures/service-harness.js';
import { waitUntil } from '../../../../packages/offload/test/helpers.js';

const temp = tempDir();
const children: Child[] = [];
const services: TestService[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const socket of sockets) socket.destroy();
  for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  await Promise.all(services.map((service) => service.close()));
  temp.remove();
});

/** The start of a request that never ends: the connection is in the middle of a request. */
const PARTIAL = 'POST /api/notifications/notify HTTP/1.1\r\nHost: 127.0.0.1\r\n';

/** A connection to 127.0.0.1:`port` that writes `data`, once connected (or closed at once). */
interface Client {
  socket: Socket;
  /** What the server sent, as text. */
  received(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

function connect(port: number, data?: string): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  let text = '';
  let closed = false;
  socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
  // A connection the server refuses may be reset.
  socket.on('error', () => undefined);
  const client: Client = {
    socket,
    received: () => text,
    closed: once(socket, 'close').then(() => {
      closed = true;
    }),
    isClosed: () => closed,
  };
  return new Promise((resolve) => {
    socket.once('connect', () => {
      if (data !== undefined) socket.write(data);
      resolve(client);
    });
    socket.once('close', () => resolve(client));
  });
}

/** Resolves true once `client` is closed, false after `timeout` ms. */
async function closedWithin(client: Client, timeout: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    client.closed.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeout))),
  ]);
  clearTimeout(timer);
  return result;
}

/** Waits until the service holds `count` connections. */
async function holding(service: TestService, count: number): Promise<void> {
  const connections = () =>
    new Promise<number>((resolve, reject) =>
      service.app.server.getConnections((error, n) => (error ? reject(error) : resolve(n))),
    );
  await waitUntil(`the service to hold ${count} connections`, async () => {
    return (await connections()) === count;
  });
}

/** The status of `method url` on a new connection; 0 when not answered within 1 s. */
function onNewConnection(url: string, method = 'GET'): Promise<number> {
  return new Promise((resolve) => {
    const request = http.request(url, { method, agent: false, timeout: 1000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode!));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(0));
    request.end();
  });
}

/** Status and Keep-Alive header of the one response `client` has received, once it has. */
async function answer(client: Client): Promise<{ status: number; keepAlive: string | undefined }> {
  await waitUntil('an answer', async () => client.received().includes('\r\n\r\n'), {
    timeout: 5000,
  });
  const head = client.received().split('\r\n\r\n')[0]!;
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    keepAlive: /\r\nkeep-alive: *([^\r]*)/i.exec(head)?.[1],
  };
}

describe('MAX_CONNECTIONS', () => {
  it('defaults to the open-file limit less a fifth of it, at least 128 and at most half', () => {
    assert.equal(defaultMaxConnections(1024), 819);
    assert.equal(defaultMaxConnections(65_536), 52_428);
    assert.equal(defaultMaxConnections(256), 128);
    assert.equal(defaultMaxConnections(200), 100);
    assert.equal(defaultMaxConnections(undefined), FALLBACK_MAX_CONNECTIONS);
    assert.equal(loadConfig({}, { fileLimit: 1024 }).maxConnections, 819);
    assert.equal(loadConfig({ MAX_CONNECTIONS: '500' }, { fileLimit: 1024 }).maxConnections, 500);
  });

  it('reads the limit from /proc/self/limits, and none where there is no such file', () => {
    const limits = join(temp.dir, 'limits');
    writeFileSync(
      limits,
      'Limit                     Soft Limit           Hard Limit           Units     \n' +
        'Max processes             63432                63432                processes \n' +
        'Max open files            1024                 524288               files     \n',
    );
    assert.equal(openFileLimit(limits), 1024);
    assert.equal(openFileLimit(join(temp.dir, 'missing')), undefined);
    if (process.platform === 'linux') assert.ok(openFileLimit()! > 0);
  });

  const bad: [string, number | undefined, RegExp][] = [
    ['0', 1024, /whole number from 1/],
    ['many', 1024, /whole number from 1/],
    ['1000', 1024, /^MAX_CONNECTIONS: must be at most 960, got 1000: .*ulimit -n/],
    ['2000000', undefined, /whole number from 1 to 1000000/],
  ];
  for (const [value, fileLimit, message] of bad) {
    it(`refuses MAX_CONNECTIONS=${value} under a limit of ${fileLimit} files, saying why`, () => {
      assert.throws(
        () => loadConfig({ MAX_CONNECTIONS: value }, { fileLimit }),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError);
          assert.equal(error.option, 'MAX_CONNECTIONS');
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('connections, over a real socket', () => {
  it('closes connections over MAX_CONNECTIONS as they come, and answers those it holds', async () => {
    const service = await testService({ maxConnections: 10 });
    services.push(service);
    const port = Number(new URL(await service.listen()).port);
    const held = await Promise.all(Array.from({ length: 10 }, () => connect(port, PARTIAL)));
    await holding(service, 10);

    const over = await connect(port);
    assert.ok(await closedWithin(over, 2000), 'the connection over the limit was left open');
    assert.equal(over.received(), '', 'nothing was answered on it');

    // A held connection finishes its request: answered, told to keep its connection only 1 s.
    held[0]!.socket.write('Content-Length: 0\r\n\r\n');
    assert.deepEqual(await answer(held[0]!), { status: 200, keepAlive: 'timeout=1' });

    for (const client of held) client.socket.destroy();
    await service.logs.waitFor((l) => l.msg.startsWith('connections are back under 60%'));
    const warned = service.logs.lines.find((l) =>
      l.msg.startsWith('connections reached 80% of MAX_CONNECTIONS'),
    );
    assert.equal(warned?.maxConnections, 10);
    const relieved = service.logs.lines.find((l) => l.msg.startsWith('connections are back'));
    assert.equal(relieved?.dropped, 1);
    const later = await connect(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.deepEqual(await answer(later), { status: 200, keepAlive: 'timeout=72' });
  });

  it('under pressure, closes connections idle for a second between requests or that send nothing for a second; keeps those in a request', async () => {
    const service = await testService({ maxConnections: 10 });
    services.push(service);
    const port = Number(new URL(await service.listen()).port);
    const idle = await connect(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal((await answer(idle)).status, 200);
    assert.ok(!idle.isClosed());

    // With 7 in the middle of a request, 8 of 10 are open: the idle one has a second left.
    const busy = await Promise.all(Array.from({ length: 7 }, () => connect(port, PARTIAL)));
    const pressed = performance.now();
    const silent = await connect(port);
    assert.ok(await closedWithin(idle, 5000), 'the idle connection was kept');
    assert.ok(performance.now() - pressed >= 900, 'the idle connection had no second left');
    assert.ok(await closedWithin(silent, 5000), 'the connection that sends nothing was kept');
    assert.ok(performance.now() - pressed >= 900, 'closed before it had a second to send');
    assert.ok(
      busy.every((client) => !client.isClosed()),
      'a connection in a request was closed',
    );
    busy[0]!.socket.write('Content-Length: 0\r\n\r\n');
    assert.equal((await answer(busy[0]!)).status, 200);
  });

  it('a flood of idle connections past the open-file limit: new clients are answered at once, descriptors are left for the store, no EMFILE', async () => {
    // The process may open 256 files: MAX_CONNECTIONS defaults to 128.
    const openFiles = 256;
    const child = spawnCli(
      ['serve'],
      {
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        NOTIFY_DEMO_DELAY_MS: '0',
        DATABASE_URL: `sqlite:${join(temp.dir, 'flood.db')}`,
      },
      { openFiles },
    );
    children.push(child);
    const url = await listeningUrl(child.logs);
    const port = Number(new URL(url).port);
    const notify = async () => {
      const response = await fetch(`${url}/api/notifications/notify`, {
        method: 'POST',
        signal: AbortSignal.timeout(2000),
      });
      await response.arrayBuffer();
      return response.status;
    };
    for (let i = 0; i < 100; i++) assert.equal(await notify(), 200);

    const flood = await Promise.all(Array.from({ length: 400 }, () => connect(port)));
    const floodOpened = performance.now();
    // What the process holds while the flood's connections are open: its descriptors stay well
    // under the limit (without the cap, every one of them was taken).
    const descriptors = readdirSync(`/proc/${child.process.pid}/fd`).length;
    assert.ok(descriptors <= openFiles - 64, `${descriptors} descriptors open of ${openFiles}`);

    // A new client is answered within a couple of seconds: the flood's connections are closed
    // as they come or after a second of silence.
    await waitUntil(
      '/readyz to answer on a new connection',
      async () => (await onNewConnection(`${url}/readyz`)) === 200,
      { timeout: 3000 },
    );
    assert.ok(performance.now() - floodOpened < 3000);
    assert.equal(await onNewConnection(`${url}/api/notifications/notify`, 'POST'), 200);
    // Those it has not closed are under 60% of the 128 it may hold: it is out of pressure.
    await child.logs.waitFor((l) => l.msg.startsWith('connections are back under 60%'));
    const open = flood.filter((client) => !client.isClosed()).length;
    assert.ok(open < 128 * 0.6, `${open} of the flood's connections still open`);

    // Enough writes for the SQLite checkpoint thread to start (its 500th write transaction).
    for (let i = 0; i < 100; i++) {
      const statuses = await Promise.all([notify(), notify(), notify()]);
      assert.deepEqual(statuses, [200, 200, 200]);
    }
    const faults = child.logs.lines.filter(
      (l) =>
        JSON.stringify(l).includes('EMFILE') ||
        l.msg.startsWith('the SQLite checkpoint thread stopped') ||
        l.level >= 50,
    );
    assert.deepEqual(faults, []);
    assert.ok(
      child.logs.lines.some((l) => l.msg.startsWith('connections reached 80% of MAX_CONNECTIONS')),
    );

    child.process.kill('SIGTERM');
    assert.equal(await child.exited(10_000), 0, child.stderr());
  });
});
