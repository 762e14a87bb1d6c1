/**
 * Hostile input over a real socket on 127.0.0.1, written with `net` so that nothing on the client
 * side cleans it up: invalid UTF-8, broken HTTP framing, garbage, and slow (slowloris) requests.
 * Every answer is a non-5xx in the documented envelope, every connection ends within a deadline,
 * and the service keeps serving throughout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { checkAnswer, oddBytesArb, prototypeSnapshot, RUNS } from '../fixtures/hostile.js';
import { testService, type TestService } from '../fixtures/service-harness.js';

/** A short request timeout, so that slow requests are cut off within the test's time. */
const REQUEST_TIMEOUT = 500;
/** How long any exchange may take: the request timeout, Node's check interval, and slack. */
const DEADLINE = 4000;
const SOCKET_RUNS = Math.max(20, Math.round(RUNS / 5));

const tried = new Map<string, number>();
function count(property: string): void {
  tried.set(property, (tried.get(property) ?? 0) + 1);
}

interface Exchange {
  data: Buffer;
  /** The server closed the connection before the deadline. */
  closed: boolean;
  ms: number;
}

/** Writes `request` on a new connection (then ends it, when `end`), reads until it closes. */
function exchange(port: number, request: Buffer, end: boolean): Promise<Exchange> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, DEADLINE);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the server's answer is fine: what it wrote was read already.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: !timedOut, ms: Date.now() - started });
    });
    socket.write(request);
    if (end) socket.end();
  });
}

interface RawResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** The HTTP/1.1 responses in `data`, in order; throws on anything that is not one. */
function parseResponses(data: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = data;
  while (rest.length > 0) {
    const headEnd = rest.indexOf('\r\n\r\n');
    assert.ok(headEnd > 0, `not an HTTP response: ${rest.toString('latin1').slice(0, 200)}`);
    const [statusLine, ...lines] = rest.subarray(0, headEnd).toString('latin1').split('\r\n');
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
    assert.ok(status, `not a status line: ${statusLine}`);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = rest.subarray(headEnd + 4, headEnd + 4 + length);
    assert.equal(body.length, length, 'the whole body arrived');
    responses.push({ statusCode: Number(status[1]), headers, body: body.toString('utf8') });
    rest = rest.subarray(headEnd + 4 + length);
  }
  return responses;
}

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const NOTIFY = 'POST /api/notifications/notify HTTP/1.1\r\nHost: 127.0.0.1\r\n';

/** Requests whose framing is broken, each one a known way to confuse an HTTP server. */
const BROKEN: [string, Buffer][] = [
  [
    'Content-Length and chunked at once',
    latin1(`${NOTIFY}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
  ],
  ['a negative Content-Length', latin1(`${NOTIFY}Content-Length: -1\r\n\r\n`)],
  ['a Content-Length that is not a number', latin1(`${NOTIFY}Content-Length: abc\r\n\r\n`)],
  [
    'two different Content-Lengths',
    latin1(`${NOTIFY}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}`),
  ],
  [
    'a bad chunk size',
    latin1(
      `${NOTIFY}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
    ),
  ],
  [
    'a huge chunk size',
    latin1(
      `${NOTIFY}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n{}`,
    ),
  ],
  ['an unknown method', latin1('FOO / HTTP/1.1\r\nHost: x\r\n\r\n')],
  ['HTTP/9.9', latin1('GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n')],
  ['invalid UTF-8 in the path', latin1('GET /api/tasks/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n')],
  // Well framed, so answered (400, 200) rather than cut: Connection: close ends them.
  [
    'invalid UTF-8 in Idempotency-Key',
    latin1(`${NOTIFY}Idempotency-Key: \xff\xfe\r\nConnection: close\r\n\r\n`),
  ],
  [
    'invalid UTF-8 in Authorization',
    latin1(
      'GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\nConnection: close\r\n\r\n',
    ),
  ],
  ['a header without a colon', latin1('GET /healthz HTTP/1.1\r\nHost x\r\n\r\n')],
  ['bare LF line ends', latin1('GET /healthz HTTP/1.1\nHost: x\n\n')],
  ['a NUL in a header', latin1('GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n')],
  [
    'headers over 16 KiB',
    latin1(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(20_000)}\r\n\r\n`),
  ],
  ['the HTTP/2 preface', latin1('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
  [
    'garbage after a request',
    latin1(`${NOTIFY}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}GARBAGE\r\n\r\n`),
  ],
  [
    'a body shorter than its Content-Length',
    latin1(`${NOTIFY}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"chan`),
  ],
  ['a request line only', latin1('GET /healthz HTTP/1.1\r\n')],
  ['a URL of 100 KiB', latin1(`GET /api/tasks/${'9'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)],
  [
    'a body over the limit, declared',
    latin1(`${NOTIFY}Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{"a":`),
  ],
];

describe('hostile input, over a real socket', () => {
  let s: TestService;
  let port: number;
  let prototypeBefore: string[];
  before(async () => {
    prototypeBefore = prototypeSnapshot();
    s = await testService({ databaseUrl: 'sqlite::memory:', logLevel: 'warn' }, undefined, {
      requestTimeout: REQUEST_TIMEOUT,
    });
    port = Number(new URL(await s.listen()).port);
  });
  after(async () => {
    await s.close();
    const total = [...tried.values()].reduce((a, b) => a + b, 0);
    for (const [property, n] of tried) console.log(`hostile socket inputs: ${property}: ${n}`);
    console.log(`hostile inputs tried over a socket: ${total}`);
  });

  /** Every response valid, at least one, and the connection closed by the server in time. */
  async function check(what: string, request: Buffer, end: boolean): Promise<RawResponse[]> {
    const result = await exchange(port, request, end);
    assert.ok(result.closed, `${what}: the connection was still open after ${DEADLINE} ms`);
    const responses = parseResponses(result.data);
    // Line ends before a request line are skipped (RFC 9112 2.2): nothing was asked.
    const asked = request.some((byte) => byte !== 0x0d && byte !== 0x0a);
    if (asked) assert.ok(responses.length > 0, `${what}: closed without an answer`);
    for (const response of responses) checkAnswer(what, response, 'POST');
    return responses;
  }

  it('bodies of any bytes, invalid UTF-8 included, with correct framing', async () => {
    const body = oddBytesArb(200);
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        count('bodies of any bytes');
        const head = latin1(
          `${NOTIFY}Content-Type: application/json\r\nContent-Length: ${payload.length}\r\nConnection: close\r\n\r\n`,
        );
        const responses = await check('a body of odd bytes', Buffer.concat([head, payload]), false);
        assert.equal(responses.length, 1);
        assert.ok([200, 400].includes(responses[0]!.statusCode), responses[0]!.body);
      }),
      { numRuns: SOCKET_RUNS },
    );
  });

  for (const [what, request] of BROKEN) {
    it(`broken framing: ${what}`, async () => {
      count('broken framing');
      const responses = await check(what, request, false);
      const last = responses.at(-1)!;
      if (!what.startsWith('invalid UTF-8 in A'))
        assert.ok(last.statusCode >= 400, `${what}: answered ${last.statusCode} ${last.body}`);
    });
  }

  it('random bytes as the whole request', async () => {
    const request = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      fc
        .tuple(
          fc.constantFrom('GET', 'POST', 'PUT', 'get', 'G E T', ''),
          fc.string({ maxLength: 30 }),
          fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/1', 'http/1.1', ''),
          fc.array(fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 })), {
            maxLength: 3,
          }),
        )
        .map(([method, path, version, headers]) =>
          Buffer.from(
            `${method} /${path} ${version}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`,
          ),
        ),
    );
    await fc.assert(
      fc.asyncProperty(request, async (bytes) => {
        count('random bytes');
        // The client ends its side: the server must answer what it has and close.
        await check('random bytes', bytes, true);
      }),
      { numRuns: SOCKET_RUNS },
    );
  });

  it('two Host headers: 400 BAD_REQUEST whatever their values, and nothing stored', async () => {
    const before = (await s.runtime.list({ limit: 1000 })).tasks.length;
    for (const hosts of [
      'Host: 127.0.0.1\r\nHost: other.example',
      'Host: x\r\nhost: x',
      'HOST: a\r\nX-A: 1\r\nHost: b',
    ]) {
      count('two Host headers');
      const request = latin1(
        `POST /api/notifications/notify HTTP/1.1\r\n${hosts}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      const responses = await check(hosts, request, false);
      assert.equal(responses.length, 1, hosts);
      assert.equal(responses[0]!.statusCode, 400, hosts);
      const { error } = JSON.parse(responses[0]!.body) as {
        error: { code: string; message: string };
      };
      assert.equal(error.code, 'BAD_REQUEST', hosts);
      assert.match(error.message, /2 Host headers; send exactly one/, hosts);
    }
    const after = (await s.runtime.list({ limit: 1000 })).tasks.length;
    assert.equal(after, before);
  });

  it('slow requests get a 408 and their connection closed; others are served meanwhile', async () => {
    const slow: [string, Buffer][] = [
      ['headers never finished', latin1('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ')],
      [
        'a body never finished',
        latin1(
          `${NOTIFY}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"channel":"log"`,
        ),
      ],
      [
        'chunks never finished',
        latin1(
          `${NOTIFY}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"cha\r\n`,
        ),
      ],
      ['a request line never finished', latin1('POST /api/notifications/no')],
    ];
    const before = (await s.runtime.list({ limit: 1000 })).tasks.length;
    const pending = slow.map(([what, request]) => {
      count('slow requests');
      return exchange(port, request, false).then((result) => ({ what, result }));
    });
    // While they hang, the service answers others.
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const notify = await fetch(`${url}/api/notifications/notify`, { method: 'POST' });
    assert.equal(notify.status, 200);
    for (const { what, result } of await Promise.all(pending)) {
      assert.ok(result.closed, `${what}: still open after ${DEADLINE} ms`);
      assert.ok(result.ms >= REQUEST_TIMEOUT, `${what}: cut after ${result.ms} ms`);
      const responses = parseResponses(result.data);
      assert.equal(responses.length, 1, what);
      checkAnswer(what, responses[0]!);
      assert.equal(responses[0]!.statusCode, 408, what);
      assert.equal(JSON.parse(responses[0]!.body).error.code, 'REQUEST_TIMEOUT');
    }
    const after = (await s.runtime.list({ limit: 1000 })).tasks.length;
    assert.equal(after, before + 1, 'only the complete notify stored a task');
  });

  it('left Object.prototype alone, and keeps serving', async () => {
    assert.deepEqual(prototypeSnapshot(), prototypeBefore);
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const notify = await fetch(`${url}/api/notifications/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'log', to: 'ops', body: 'still serving' }),
    });
    assert.equal(notify.status, 200);
    assert.deepEqual(
      s.logs.lines.filter((l) => /^answered 5/.test(l.msg)),
      [],
      'no request was answered with a 5xx',
    );
  });
});
