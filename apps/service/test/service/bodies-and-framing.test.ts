/**
 * How the service reads request bodies and framing: charsets, UTF-8, Content-Encoding, keys that
 * reach for a prototype, `Expect`, a URL over Node's header limit, and trailing slashes. Through
 * `app.inject`, and over a real socket on 127.0.0.1 where only Node's HTTP server shows the bug.
 */
import assert from 'node:assert/strict';
import http, { maxHeaderSize } from 'node:http';
import net, { type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { clientErrorHandler, ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { checkEnvelope } from '../fixtures/hostile.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

const NOTIFY = '/api/notifications/notify';
/** FastAPI's example request, with a subject that is not ASCII. */
const CAFE = '{"channel":"log","to":"ops","subject":"café"}';

/** `response` is the envelope with `code` and its status; returns the message. */
function refused(
  response: { statusCode: number; body: string },
  code: ErrorCode,
  message?: RegExp,
): string {
  assert.equal(response.statusCode, ERROR_CODES[code], response.body);
  const parsed = JSON.parse(response.body) as { error: { code: string; message: string } };
  checkEnvelope(code, response.statusCode, parsed);
  assert.equal(parsed.error.code, code, response.body);
  if (message) assert.match(parsed.error.message, message);
  return parsed.error.message;
}

interface Answer {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with node:http (which sends what it is given, `Expect` included) on a new connection. */
function request(
  port: number,
  options: http.RequestOptions,
  body?: Buffer,
  beforeBody?: (request: http.ClientRequest) => Promise<void>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          statusCode: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    void (beforeBody ?? (async () => undefined))(req).then(() => req.end(body));
  });
}

/** Writes `bytes` on a new connection and reads until the server closes it. */
function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server closes with part of a huge request unread, which may reset the connection after
    // its answer: what it wrote was read already.
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.write(bytes);
  });
}

/** The one HTTP/1.1 response in `raw`: its status and its body (framed by Content-Length). */
function parseResponse(raw: string): { statusCode: number; body: string } {
  const headEnd = raw.indexOf('\r\n\r\n');
  assert.ok(headEnd > 0, `not an HTTP response: ${raw.slice(0, 200)}`);
  const head = raw.slice(0, headEnd);
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  assert.ok(status, `not a status line: ${head}`);
  const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
  const body = raw.slice(headEnd + 4, headEnd + 4 + length);
  assert.equal(Buffer.byteLength(body, 'latin1'), length, 'the whole body arrived');
  return { statusCode: Number(status[1]), body: Buffer.from(body, 'latin1').toString('utf8') };
}

// One service for both suites: each test sends its own requests and reads only their answers.
let s: TestService;
let port: number;
before(async () => {
  s = await testService({ databaseUrl: 'sqlite::memory:' });
  port = Number(new URL(await s.listen()).port);
});
after(() => s.close());

async function taskCount(): Promise<number> {
  return (await s.runtime.list({ limit: 1000 })).tasks.length;
}

describe('request bodies', () => {
  const notify = (
    payload: Buffer | string | undefined,
    headers: Record<string, string> = { 'content-type': 'application/json' },
  ): Promise<LightMyRequestResponse> =>
    s.app.inject({ method: 'POST', url: NOTIFY, headers, payload } as InjectOptions);

  /** The stored delivery of the notification `response` accepted, as its payload's JSON. */
  async function storedPayload(response: LightMyRequestResponse): Promise<string> {
    assert.equal(response.statusCode, 200, response.body);
    const task = await s.runtime.get(response.json<{ id: string }>().id);
    assert.ok(task, 'the notification was stored');
    return JSON.stringify(task.payload);
  }

  it('refuses a body that is not UTF-8 with 400 INVALID_JSON, and stores nothing', async () => {
    const before = await taskCount();
    for (const bytes of [
      Buffer.from(CAFE, 'latin1'), // é as the one byte 0xE9
      Buffer.from('{"channel":"log","to":"\xff\xfe"}', 'latin1'),
      Buffer.concat([Buffer.from(CAFE.slice(0, -3)), Buffer.from([0xc3]), Buffer.from('"}')]),
      // A surrogate encoded as UTF-8 (CESU-8): decoders turn it into U+FFFD.
      Buffer.from([...Buffer.from('{"a":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}')]),
    ]) {
      refused(await notify(bytes), 'INVALID_JSON', /not valid UTF-8.*send .*UTF-8/);
    }
    assert.equal(await taskCount(), before);
  });

  it('refuses the review’s curl over a real socket, rather than storing "caf\\uFFFD"', async () => {
    const answer = await request(
      port,
      { method: 'POST', path: NOTIFY, headers: { 'content-type': 'application/json' } },
      Buffer.from(CAFE, 'latin1'),
    );
    refused(answer, 'INVALID_JSON', /not valid UTF-8/);
  });

  it('refuses a declared charset other than UTF-8 with 415, naming it', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(CAFE, 'utf16le')]);
    for (const [contentType, body, named] of [
      ['application/json; charset=iso-8859-1', Buffer.from(CAFE, 'latin1'), 'iso-8859-1'],
      // Declared, though every byte would read the same as UTF-8: the declaration is wrong.
      ['application/json; charset=ISO-8859-1', Buffer.from('{}'), 'ISO-8859-1'],
      ['application/json;charset="latin1"', Buffer.from('{}'), 'latin1'],
      ['application/json; charset=utf-16', utf16, 'utf-16'],
      ['Application/JSON; Charset=UTF-16LE', utf16, 'UTF-16LE'],
      ['application/json; charset=utf-8; charset=us-ascii', Buffer.from('{}'), 'us-ascii'],
    ] as const) {
      const message = refused(
        await notify(body, { 'content-type': contentType }),
        'UNSUPPORTED_MEDIA_TYPE',
        /send .*UTF-8/,
      );
      assert.ok(message.includes(named), `${contentType}: ${message}`);
    }
  });

  it('reads UTF-8 as sent: with or without a charset, with a byte-order mark', async () => {
    const variants: [Buffer, Record<string, string>][] = [
      [Buffer.from(CAFE), { 'content-type': 'application/json' }],
      [Buffer.from(CAFE), { 'content-type': 'application/json; charset=utf-8' }],
      [Buffer.from(CAFE), { 'content-type': 'application/json; charset="UTF-8"' }],
      [Buffer.from(CAFE), { 'content-type': 'application/json;charset=utf8' }],
      [Buffer.from(`\ufeff${CAFE}`), { 'content-type': 'application/json' }],
    ];
    for (const [body, headers] of variants) {
      const payload = await storedPayload(await notify(body, headers));
      assert.ok(payload.includes('"café"'), `${headers['content-type']}: ${payload}`);
      assert.ok(!payload.includes('\ufffd'), payload);
    }
    // Characters of every length, split across chunks by a real socket's reads.
    const text = 'é€😀'.repeat(2000);
    const answer = await request(
      port,
      { method: 'POST', path: NOTIFY, headers: { 'content-type': 'application/json' } },
      Buffer.from(JSON.stringify({ channel: 'log', to: 'ops', body: text })),
    );
    assert.equal(answer.statusCode, 200, answer.body);
    const task = await s.runtime.get((JSON.parse(answer.body) as { id: string }).id);
    assert.ok(JSON.stringify(task?.payload).includes(text));
  });

  it('refuses a compressed body with 415, whatever its content type', async () => {
    const before = await taskCount();
    const gzip = gzipSync(CAFE);
    for (const [body, headers] of [
      [gzip, { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
      // Plain JSON labelled as compressed: read as it is, it was accepted.
      [Buffer.from(CAFE), { 'content-type': 'application/json', 'content-encoding': 'br' }],
      [Buffer.from(CAFE), { 'content-type': 'application/json', 'content-encoding': 'GZIP' }],
      [gzip, { 'content-type': 'application/json', 'content-encoding': 'identity, gzip' }],
      [gzip, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }],
      [gzip, { 'content-encoding': 'gzip' }],
      [gzip, { 'content-type': 'application/json; charset=latin1', 'content-encoding': 'gzip' }],
    ] as const) {
      const message = refused(
        await notify(body, headers),
        'UNSUPPORTED_MEDIA_TYPE',
        /must not be compressed/,
      );
      assert.ok(message.includes(headers['content-encoding'].toLowerCase().replace(/.*, /, '')));
    }
    assert.equal(await taskCount(), before);
  });

  it('reads a body labelled identity, and a request without a body as before', async () => {
    for (const encoding of ['identity', 'Identity']) {
      const headers = { 'content-type': 'application/json', 'content-encoding': encoding };
      assert.ok((await storedPayload(await notify(CAFE, headers))).includes('"café"'));
    }
    // No body: the demo notification, whatever the headers say about a body there is not.
    const demo = await notify(undefined, { 'content-encoding': 'gzip' });
    assert.equal(demo.statusCode, 200, demo.body);
  });

  it('says a key that reaches for a prototype is refused, and to rename it', async () => {
    for (const body of [
      '{"channel":"log","to":"ops","data":{"__proto__":{"x":1}}}',
      '{"__proto__":{"x":1}}',
      // Escaped, it is the same key once parsed.
      '{"channel":"log","to":"ops","data":{"\\u005f_proto__":1}}',
      '{"channel":"log","to":["ops",{"a b":{"__proto__":{}}}]}',
      '{"channel":"log","to":"ops","data":{"a":{"constructor":{"prototype":{"x":1}}}}}',
      `{"channel":"log","to":"ops","data":${'{"a":'.repeat(5000)}{"__proto__":1}${'}'.repeat(5000)}}`,
    ]) {
      const message = refused(await notify(body), 'INVALID_JSON', /"__proto__" key.*rename/);
      assert.ok(!/not valid JSON/.test(message), message);
    }
    // A constructor key without a prototype in it is an ordinary key, as it was.
    const plain = '{"channel":"log","to":"ops","data":{"constructor":{"name":"x"}}}';
    assert.equal((await notify(plain)).statusCode, 200);
    // JSON that is not valid still says so.
    refused(await notify('{"channel":'), 'INVALID_JSON', /not valid JSON/);
    refused(await notify('\ufeff{"__proto__":'), 'INVALID_JSON', /not valid JSON/);
  });
});

describe('request framing', () => {
  it('answers an Expect other than 100-continue with the 417 envelope, and logs it by its request id', async () => {
    const before = await taskCount();
    const answer = await request(port, {
      method: 'POST',
      path: NOTIFY,
      headers: { expect: 'foo', 'x-request-id': 'expect-foo-1' },
    });
    refused(answer, 'EXPECTATION_FAILED', /only "Expect: 100-continue" is supported.*"foo"/);
    assert.equal(answer.headers.connection, 'close');
    assert.equal(answer.headers['x-request-id'], 'expect-foo-1');
    await s.logs.waitFor(
      (line) =>
        line.msg === 'request completed' &&
        line.statusCode === 417 &&
        line.reqId === 'expect-foo-1',
      5000,
      'the 417 logged',
    );
    assert.equal(await taskCount(), before, 'nothing was stored');
  });

  it('still answers Expect: 100-continue with 100, then reads the body', async () => {
    let continued = false;
    const answer = await request(
      port,
      {
        method: 'POST',
        path: NOTIFY,
        headers: { expect: '100-continue', 'content-type': 'application/json' },
      },
      Buffer.from(CAFE),
      (req) =>
        new Promise((resolve) =>
          req.once('continue', () => {
            continued = true;
            resolve();
          }),
        ),
    );
    assert.ok(continued, 'the server said 100 Continue');
    assert.equal(answer.statusCode, 200, answer.body);
  });

  it('answers a URL over the header limit with 414 URL_TOO_LONG, naming the limit', async () => {
    const tooLong = [
      // The review's curl: the request line does not end within the limit.
      `GET /api/tasks?name=${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      // The request line ends, past the limit, within what was read.
      `GET /api/tasks/${'9'.repeat(maxHeaderSize + 10)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      // Empty lines before a request line are skipped (RFC 9112 2.2).
      `\r\n\r\nGET /healthz?q=${'b'.repeat(maxHeaderSize)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ];
    for (const bytes of tooLong) {
      const answer = parseResponse(await exchange(port, Buffer.from(bytes)));
      refused(answer, 'URL_TOO_LONG', new RegExp(`URL is too long.*${maxHeaderSize} bytes`));
    }
  });

  it('still answers headers over the limit with 431 HEADERS_TOO_LARGE', async () => {
    const tooLarge = [
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(maxHeaderSize + 10)}\r\n\r\n`,
      // A long URL, but under the limit: the headers pass it.
      `GET /healthz?q=${'b'.repeat(maxHeaderSize - 500)} HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(1000)}\r\n\r\n`,
    ];
    for (const bytes of tooLarge) {
      const answer = parseResponse(await exchange(port, Buffer.from(bytes)));
      refused(answer, 'HEADERS_TOO_LARGE', /headers are too large/);
    }
  });

  it('places an overflow by the chunk Node passes; one from within a request counts as headers', () => {
    // Node passes only the chunk it was parsing: from the middle of a request that arrived in
    // pieces, it tells neither where the URL ended nor whether it began there.
    const written: string[] = [];
    const socket = {
      destroyed: false,
      writable: true,
      write: (text: string) => written.push(text),
      destroy: () => undefined,
    } as unknown as Socket;
    const overflow = (rawPacket: Buffer) =>
      Object.assign(new Error('Parse Error: Header overflow'), {
        code: 'HPE_HEADER_OVERFLOW',
        rawPacket,
      });
    const handle = clientErrorHandler(1000);
    handle(overflow(Buffer.from('a'.repeat(maxHeaderSize))), socket);
    handle(overflow(Buffer.from(`aaa HTTP/1.1\r\nX-A: ${'a'.repeat(100)}`)), socket);
    handle(overflow(Buffer.from(`GET /${'a'.repeat(maxHeaderSize)}`)), socket);
    assert.deepEqual(
      written.map((text) => /^HTTP\/1\.1 (\d+)/.exec(text)?.[1]),
      ['431', '431', '414'],
    );
  });

  it('treats a trailing slash as no slash: the list, health, a task; a 404 where no route is', async () => {
    const created = await s.app.inject({ method: 'POST', url: NOTIFY });
    const { id } = created.json<{ id: string }>();
    const list = await s.app.inject('/api/tasks/');
    assert.equal(list.statusCode, 200, list.body);
    assert.ok(list.json<{ tasks: { id: string }[] }>().tasks.some((task) => task.id === id));
    const health = await s.app.inject('/healthz/');
    assert.equal(health.statusCode, 200, health.body);
    assert.deepEqual(health.json(), { ok: true });
    const task = await s.app.inject(`/api/tasks/${id}/`);
    assert.equal(task.statusCode, 200, task.body);
    assert.equal(task.json<{ id: string }>().id, id);
    // There is no list of notifications, with or without the slash: that path only takes POST.
    for (const url of ['/api/notifications/', '/api/notifications']) {
      refused(await s.app.inject(url), 'METHOD_NOT_ALLOWED', /use POST$/);
    }
    refused(await s.app.inject('/api/nothing/'), 'NOT_FOUND', /no route GET/);
    const again = await s.app.inject({ method: 'POST', url: `${NOTIFY}/` });
    assert.equal(again.statusCode, 200, again.body);
  });
});
