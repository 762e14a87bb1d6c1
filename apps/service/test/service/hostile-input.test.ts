/**
 * Hostile input over the whole HTTP API, property-based (fast-check), through `app.inject`:
 * whatever a client sends, the answer is never a 5xx, every error is the documented envelope with
 * a code from the catalogue, `Object.prototype` stays clean, and the service keeps serving.
 * `HOSTILE_RUNS=N` sets the runs per property (default 300).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { BODY_LIMIT } from '../../src/errors.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import {
  checkAnswer,
  contentTypeArb,
  hostileChannels,
  idArb,
  notificationJson,
  oddBytesArb,
  plausibleNotificationJson,
  prototypeSnapshot,
  queryArb,
  rawJson,
  RUNS,
  toTestNet,
} from '../fixtures/hostile.js';

const NOTIFY_URLS = ['/api/notifications/notify', '/api/notifications'] as const;
const API_KEY = 'hostile-test-api-key-0123456789';

/** Inputs tried, per property. */
const tried = new Map<string, number>();
let prototypeBefore: string[];

function count(property: string): void {
  tried.set(property, (tried.get(property) ?? 0) + 1);
}

async function send(
  s: TestService,
  property: string,
  request: InjectOptions,
): Promise<LightMyRequestResponse> {
  count(property);
  const response = await s.app.inject(request);
  checkAnswer(
    `${request.method ?? 'GET'} ${String(request.url).slice(0, 120)}`,
    response,
    request.method,
  );
  return response;
}

/** `send` of a JSON body (`payload`, as text) to `url` by POST. */
function postJson(
  s: TestService,
  property: string,
  url: string,
  payload?: string,
): Promise<LightMyRequestResponse> {
  return send(s, property, {
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    payload,
  });
}

describe('hostile input, through inject', () => {
  let s: TestService;
  let secured: TestService;
  before(async () => {
    prototypeBefore = prototypeSnapshot();
    const channels = hostileChannels();
    s = await testService(
      { databaseUrl: 'sqlite::memory:', logLevel: 'warn', channels },
      undefined,
      { resolve: toTestNet },
    );
    secured = await testService(
      { databaseUrl: 'sqlite::memory:', logLevel: 'warn', channels, apiKey: API_KEY },
      undefined,
      { resolve: toTestNet },
    );
  });
  after(async () => {
    await Promise.all([s.close(), secured.close()]);
    const total = [...tried.values()].reduce((a, b) => a + b, 0);
    for (const [property, n] of tried) console.log(`hostile inputs: ${property}: ${n}`);
    console.log(`hostile inputs tried: ${total}`);
  });

  it('notify: any JSON value, with odd numbers and prototype keys', async () => {
    await fc.assert(
      fc.asyncProperty(rawJson, fc.constantFrom(...NOTIFY_URLS), async (body, url) => {
        await postJson(s, 'notify: any JSON value', url, body);
      }),
      { numRuns: RUNS },
    );
  });

  it('notify: objects shaped like a notification, with odd values and extra keys', async () => {
    const body = fc.oneof(notificationJson, plausibleNotificationJson);
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom(...NOTIFY_URLS), async (body, url) => {
        const response = await postJson(s, 'notify: notification-shaped objects', url, body);
        if (response.statusCode === 200) {
          accepted += 1;
          const answer = response.json<{ ok: boolean; id: string }>();
          assert.equal(answer.ok, true);
          assert.match(answer.id, /^(\d+|ntf_[A-Za-z0-9_-]{22})$/);
          // What was accepted reads back.
          const view = await send(s, 'notify: notification-shaped objects', {
            method: 'GET',
            url: `/api/notifications/${answer.id}`,
          });
          assert.equal(view.statusCode, 200, view.body);
        } else {
          assert.equal(response.statusCode, 400, response.body);
        }
      }),
      { numRuns: RUNS * 2 },
    );
    console.log(`notification-shaped objects accepted: ${accepted}`);
    assert.ok(accepted > RUNS / 4, `only ${accepted} were accepted: the generator is too hostile`);
  });

  it('notify: prototype pollution keys at any depth are refused or harmless', async () => {
    const poison = fc.constantFrom(
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      '{"channel":"log","to":"a","data":{"__proto__":{"polluted":1}}}',
      '{"channel":"log","to":"a","data":{"a":{"constructor":{"prototype":{"polluted":1}}}}}',
      '{"channel":"log","to":["a",{"__proto__":{"polluted":1}}]}',
      '{"channel":"log","to":"a","prototype":{"polluted":1}}',
      '{"channel":"log","to":"a","data":{"prototype":{"polluted":1}}}',
      '{"channel":"push","to":{"endpoint":"https://push.example/x","keys":{"__proto__":{"auth":"x"}}}}',
    );
    await fc.assert(
      fc.asyncProperty(poison, fc.constantFrom(...NOTIFY_URLS), async (body, url) => {
        await postJson(s, 'notify: prototype pollution', url, body);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      { numRuns: Math.min(RUNS, 40) },
    );
  });

  it('notify: raw bytes, invalid UTF-8, and wrong, missing or odd content types', async () => {
    const body = fc.oneof(
      { arbitrary: oddBytesArb(300), weight: 2 },
      fc.constantFrom(
        Buffer.from('{"channel":"log","to":"\xff\xfe"}', 'latin1'),
        Buffer.from('\ufeff{}'),
        Buffer.from('{} {}'),
        Buffer.from('{}\u0000'),
        Buffer.alloc(0),
      ),
    );
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.option(contentTypeArb, { nil: undefined }),
        fc.constantFrom(...NOTIFY_URLS),
        async (payload, contentType, url) => {
          const headers = contentType === undefined ? {} : { 'content-type': contentType };
          await send(s, 'notify: bytes and content types', {
            method: 'POST',
            url,
            headers,
            payload,
          });
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('notify: an empty body with a JSON content type is the demo notification', async () => {
    for (const url of NOTIFY_URLS) {
      const response = await postJson(s, 'notify: empty JSON body', url);
      assert.equal(response.statusCode, 200, response.body);
    }
  });

  it('notify: huge and deeply nested bodies, and bodies around the size limit', async () => {
    const shape = fc.oneof(
      // Nested arrays or objects as the whole body, or inside data, up to and past the limit.
      fc.tuple(fc.constantFrom('array', 'object', 'data'), fc.integer({ min: 1, max: 40_000 })),
      // A body of exactly this many bytes, around the limit.
      fc.tuple(fc.constant('size'), fc.integer({ min: BODY_LIMIT - 64, max: BODY_LIMIT + 64 })),
      fc.tuple(fc.constant('size'), fc.integer({ min: BODY_LIMIT + 1, max: 4 * BODY_LIMIT })),
    );
    await fc.assert(
      fc.asyncProperty(shape, async ([kind, n]) => {
        const payload =
          kind === 'array'
            ? '['.repeat(n) + ']'.repeat(n)
            : kind === 'object'
              ? '{"a":'.repeat(n) + '1' + '}'.repeat(n)
              : kind === 'data'
                ? `{"channel":"log","to":"a","data":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`
                : sized(n);
        const response = await postJson(s, 'notify: huge and nested', NOTIFY_URLS[0], payload);
        const bytes = Buffer.byteLength(payload);
        if (bytes > BODY_LIMIT) assert.equal(response.statusCode, 413, `${bytes} bytes`);
        else assert.ok([200, 400].includes(response.statusCode), `${kind} ${n}: ${response.body}`);
      }),
      { numRuns: Math.min(RUNS, 60) },
    );
  });

  it('reads and changes of tasks and notifications with odd ids', async () => {
    const route = fc.constantFrom(
      ['GET', '/api/tasks/'],
      ['GET', '/api/notifications/'],
      ['POST', '/api/tasks/{}/retry'],
      ['POST', '/api/tasks/{}/cancel'],
    );
    await fc.assert(
      fc.asyncProperty(route, idArb, async ([method, template], id) => {
        const url = template.includes('{}') ? template.replace('{}', id) : template + id;
        await send(s, 'odd ids', { method: method as 'GET' | 'POST', url });
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('GET /api/tasks with odd query strings', async () => {
    await fc.assert(
      fc.asyncProperty(queryArb, async (query) => {
        await send(s, 'task list queries', { method: 'GET', url: `/api/tasks?${query}` });
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('odd methods and paths', async () => {
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD');
    const segment = fc.oneof(
      fc.constantFrom('api', 'notifications', 'notify', 'tasks', 'healthz', 'readyz', '..', '.'),
      idArb,
    );
    const path = fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join('/')}`);
    await fc.assert(
      fc.asyncProperty(method, path, fc.boolean(), async (m, url, trailingSlash) => {
        await send(s, 'odd methods and paths', {
          method: m as InjectOptions['method'],
          url: trailingSlash ? `${url}/` : url,
        });
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('Authorization variants when OFFLOAD_API_KEY is set: only the key gets in', async () => {
    const authorization = fc.oneof(
      fc.constantFrom(
        `Bearer ${API_KEY}`,
        `bearer ${API_KEY}`,
        `BEARER   ${API_KEY}`,
        `Bearer ${API_KEY} `,
        ` Bearer ${API_KEY}`,
        `Bearer ${API_KEY}x`,
        `Bearer ${API_KEY.slice(0, -1)}`,
        `Bearer\t${API_KEY}`,
        `Basic ${Buffer.from(`x:${API_KEY}`).toString('base64')}`,
        `Bearer ${API_KEY}, Bearer other`,
        'Bearer',
        'Bearer ',
        '',
      ),
      fc.string({ maxLength: 60 }).filter((v) => /^[\x20-\x7e]*$/.test(v)),
      fc.string({ maxLength: 40 }).map((v) => `Bearer ${v}`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.option(authorization, { nil: undefined }),
        fc.constantFrom('/api/tasks', '/api/notifications/notify', '/api/tasks/1'),
        async (header, url) => {
          const response = await send(secured, 'authorization', {
            method: url.includes('notify') ? 'POST' : 'GET',
            url,
            headers: header === undefined ? {} : { authorization: header },
          });
          const right =
            header !== undefined && new RegExp(`^Bearer +${API_KEY}$`, 'i').test(header);
          if (right) assert.notEqual(response.statusCode, 401, header);
          else assert.equal(response.statusCode, 401, String(header));
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('Idempotency-Key variants: a bad key is a 400; a good one replays or refuses', async () => {
    const key = fc.oneof(
      fc.string({ minLength: 1, maxLength: 40 }).filter((k) => /^[\x21-\x7e]+$/.test(k)),
      fc.uuid(),
      fc.constantFrom('', ' ', 'a b', 'k'.repeat(255), 'k'.repeat(256), 'é', '\t', 'k,k'),
      fc.string({ maxLength: 20 }).filter((v) => /^[\x20-\x7e]*$/.test(v)),
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('{}', '{"channel":"log","to":"ops"}', '{"channel":"log","to":["a","b"]}'),
      notificationJson,
    );
    await fc.assert(
      fc.asyncProperty(key, body, body, async (k, first, second) => {
        const request = (payload: string | undefined): InjectOptions => ({
          method: 'POST',
          url: NOTIFY_URLS[0],
          headers: { 'content-type': 'application/json', 'idempotency-key': k },
          ...(payload === undefined ? {} : { payload }),
        });
        const a = await send(s, 'idempotency keys', request(first));
        const again = await send(s, 'idempotency keys', request(first));
        const b = await send(s, 'idempotency keys', request(second));
        if (!/^[\x21-\x7e]{1,255}$/.test(k)) {
          // Refused, for the key or for a bad body found first: a bad key is never ignored.
          for (const r of [a, again, b]) assert.equal(r.statusCode, 400, r.body);
          return;
        }
        // The same request again answers as the first did (a key may have been used by an
        // earlier run with another body: then both are 422).
        assert.equal(again.statusCode, a.statusCode, again.body);
        if (a.statusCode === 200) assert.equal(again.json().id, a.json().id);
        assert.ok([200, 400, 422].includes(b.statusCode), b.body);
      }),
      { numRuns: RUNS },
    );
  });

  it('left Object.prototype alone, and keeps serving', async () => {
    assert.deepEqual(prototypeSnapshot(), prototypeBefore);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    for (const service of [s, secured]) {
      assert.equal((await service.app.inject('/healthz')).statusCode, 200);
      assert.equal((await service.app.inject('/readyz')).statusCode, 200);
    }
    const notify = await s.app.inject({
      method: 'POST',
      url: NOTIFY_URLS[0],
      payload: { channel: 'log', to: 'ops', subject: 'after', body: 'still serving' },
    });
    assert.equal(notify.statusCode, 200, notify.body);
    const { id } = notify.json<{ id: string }>();
    const task = await s.app.inject(`/api/tasks/${id}`);
    assert.equal(task.statusCode, 200);
    const authorized = await secured.app.inject({
      method: 'POST',
      url: NOTIFY_URLS[0],
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    assert.equal(authorized.statusCode, 200, authorized.body);
    // Deliveries fail and are logged as errors (nothing is reachable); no request may have.
    const answered5xx = s.logs.lines.filter((l) => /^answered 5/.test(l.msg));
    assert.deepEqual(answered5xx, []);
  });
});

/** A notification body of exactly `bytes` bytes (at least 40). */
function sized(bytes: number): string {
  const head = '{"channel":"log","to":"a","body":"';
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}
