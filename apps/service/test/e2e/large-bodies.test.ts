/**
 * Bodies the service does not take, over a real socket on 127.0.0.1: a client still sending one
 * reads the answer (the 413, the 401), and the service reads no more than DROP_BYTES of what is
 * left before it closes the connection. Node's fetch meets the fault only with the service in
 * another process, as in production: sharing one event loop hides it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DROP_BYTES } from '../../src/body.js';
import { checkEnvelope } from '../fixtures/hostile.js';
import {
  listeningUrl,
  spawnCli,
  testService,
  type Child,
  type TestService,
} from '../fixtures/service-harness.js';

const NOTIFY = '/api/notifications/notify';
const API_KEY = 'a-key-for-these-tests';
/** What the kernel may hold of a connection besides what the server read: both sides' buffers. */
const BUFFERED = 32 * 1024 * 1024;

let child: Child;
let url: string;
let service: TestService;
let servicePort: number;
before(async () => {
  child = spawnCli(['serve'], {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DATABASE_URL: 'memory:',
  });
  service = await testService({ databaseUrl: 'memory:', apiKey: API_KEY, logLevel: 'info' });
  servicePort = Number(new URL(await service.listen()).port);
  url = await listeningUrl(child.logs);
});
after(async () => {
  child.process.kill('SIGKILL');
  await service.close();
});

interface Sent {
  /** Body bytes written before the server closed the connection, or all of them. */
  written: number;
  /** What the server answered, as text. */
  answer: string;
  closedByServer: boolean;
}

/**
 * Sends `head`, then `length` bytes of body as fast as the server reads them (chunked when
 * `chunked`), until the server closes the connection, everything is sent or 10 s have passed.
 */
async function sendLarge(
  port: number,
  head: string,
  length: number,
  { chunked = false } = {},
): Promise<Sent> {
  const socket = net.connect(port, '127.0.0.1');
  let answer = '';
  let closed = false;
  socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk));
  // Writing to a connection the server closed fails with EPIPE or ECONNRESET.
  socket.on('error', () => undefined);
  socket.once('close', () => (closed = true));
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(head);
  const piece = Buffer.alloc(64 * 1024, 0x20);
  const frame = chunked ? Buffer.from(`${piece.length.toString(16)}\r\n`) : Buffer.alloc(0);
  const deadline = performance.now() + 10_000;
  let written = 0;
  while (written < length && !closed && performance.now() < deadline) {
    written += piece.length;
    const more = socket.write(chunked ? Buffer.concat([frame, piece, Buffer.from('\r\n')]) : piece);
    if (!more) await next(socket, ['drain', 'close'], Math.max(0, deadline - performance.now()));
  }
  // Whatever is left of the answer arrives with the close; a server still reading gets 1 s more.
  if (!closed) await next(socket, ['close'], 1000);
  socket.destroy();
  return { written, answer, closedByServer: closed };
}

/** Resolves when one of `events` happens on `socket`, or after `ms` ms. */
async function next(socket: net.Socket, events: string[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const listeners: [string, () => void][] = [];
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    for (const event of events) {
      listeners.push([event, resolve]);
      socket.once(event, resolve);
    }
  });
  clearTimeout(timer);
  for (const [event, listener] of listeners) socket.off(event, listener);
}

/** The status of the first response in `answer`. */
function status(answer: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
}

describe('bodies over the limit', () => {
  it("answers fetch's 5 MB body with the 413 envelope, every time, sent whole or streamed", async () => {
    const body = Buffer.alloc(5 * 1024 * 1024, 0x20);
    for (let i = 0; i < 12; i++) {
      const streamed = i % 2 === 1;
      const response = await fetch(`${url}${NOTIFY}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: streamed ? new Blob([body]).stream() : body,
        ...(streamed ? { duplex: 'half' } : {}),
        signal: AbortSignal.timeout(10_000),
      } as RequestInit);
      assert.equal(response.status, 413, `attempt ${i + 1}`);
      const parsed = (await response.json()) as { error: { code: string } };
      checkEnvelope('a 5 MB body', 413, parsed);
      assert.equal(parsed.error.code, 'BODY_TOO_LARGE');
    }
  });

  it('keeps the connection after reading the rest of a refused body', async () => {
    const body = '{"channel":"log","to":"ops","subject":"' + 'x'.repeat(100_000) + '"}';
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk));
    const request = (text: string) =>
      `POST ${NOTIFY} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
    socket.write(request(body) + request(''));
    const deadline = performance.now() + 5000;
    while ((answer.match(/HTTP\/1\.1 /g) ?? []).length < 2 && !socket.destroyed) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await next(socket, ['data', 'close'], left);
    }
    socket.destroy();
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [413, 200]);
  });

  it(`reads at most ${DROP_BYTES / 1024 / 1024} MiB more of a 100 MB body, then closes the connection`, async () => {
    const length = 100 * 1024 * 1024;
    const head = (framing: string) =>
      `POST ${NOTIFY} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n`;
    const port = Number(new URL(url).port);
    for (const [framing, chunked] of [
      [`Content-Length: ${length}\r\n`, false],
      ['Transfer-Encoding: chunked\r\n', true],
    ] as const) {
      const sent = await sendLarge(port, head(framing), length, { chunked });
      assert.equal(status(sent.answer), 413, `${framing.trim()}: ${sent.answer.slice(0, 100)}`);
      assert.ok(sent.closedByServer, `${framing.trim()}: the connection was left open`);
      assert.ok(sent.written < DROP_BYTES + BUFFERED, `${framing.trim()}: ${sent.written} bytes`);
    }
  });

  it('reads at most as much of a body sent without the API key, after the 401', async () => {
    const length = 100 * 1024 * 1024;
    const sent = await sendLarge(
      servicePort,
      `POST ${NOTIFY} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
      length,
    );
    assert.equal(status(sent.answer), 401, sent.answer.slice(0, 100));
    assert.ok(sent.closedByServer, 'the connection was left open');
    assert.ok(sent.written < DROP_BYTES + BUFFERED, `${sent.written} bytes`);
  });
});
