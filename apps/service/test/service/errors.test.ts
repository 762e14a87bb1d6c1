import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import {
  BODY_LIMIT,
  ERROR_CODES,
  toApiError,
  type ErrorBody,
  type ErrorCode,
} from '../../src/errors.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import { postgresStoreError } from '../../../../packages/offload/src/postgres/errors.js';
import {
  fileMovedError,
  sqliteStoreError,
} from '../../../../packages/offload/src/sqlite/errors.js';

const NOTIFY = '/api/notifications/notify';
const json = { 'content-type': 'application/json' };

/** [what, request, status, code] */
const badInputs: [string, InjectOptions, number, ErrorCode][] = [
  [
    'malformed JSON',
    { method: 'POST', url: NOTIFY, headers: json, payload: '{"channel":' },
    400,
    'INVALID_JSON',
  ],
  [
    'a prototype-poisoning body',
    { method: 'POST', url: NOTIFY, headers: json, payload: '{"__proto__":{"x":1}}' },
    400,
    'INVALID_JSON',
  ],
  [
    'a JSON array',
    { method: 'POST', url: NOTIFY, headers: json, payload: '[]' },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'JSON null',
    { method: 'POST', url: NOTIFY, headers: json, payload: 'null' },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'a notification without channel',
    { method: 'POST', url: NOTIFY, payload: { to: 'ops' } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'a channel that is not a string',
    { method: 'POST', url: NOTIFY, payload: { channel: 5, to: 'ops' } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'an unknown channel',
    { method: 'POST', url: NOTIFY, payload: { channel: 'sms', to: '+100' } },
    400,
    'UNKNOWN_CHANNEL',
  ],
  [
    'a missing recipient',
    { method: 'POST', url: NOTIFY, payload: { channel: 'log' } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'a recipient of the wrong type',
    { method: 'POST', url: NOTIFY, payload: { channel: 'log', to: 5 } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'an empty subject',
    { method: 'POST', url: NOTIFY, payload: { channel: 'log', to: 'a', subject: '' } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'data that is not an object',
    { method: 'POST', url: NOTIFY, payload: { channel: 'log', to: 'a', data: [1] } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'an unknown field',
    { method: 'POST', url: NOTIFY, payload: { channel: 'log', to: 'a', cc: 'b' } },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'a body over the limit',
    {
      method: 'POST',
      url: NOTIFY,
      payload: { channel: 'log', to: 'a', body: 'x'.repeat(BODY_LIMIT) },
    },
    413,
    'BODY_TOO_LARGE',
  ],
  [
    'a text body',
    { method: 'POST', url: NOTIFY, headers: { 'content-type': 'text/plain' }, payload: 'hello' },
    415,
    'UNSUPPORTED_MEDIA_TYPE',
  ],
  [
    'a form body',
    {
      method: 'POST',
      url: NOTIFY,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'to=a',
    },
    415,
    'UNSUPPORTED_MEDIA_TYPE',
  ],
  [
    'a malformed task id',
    { method: 'GET', url: '/api/tasks/not%20an%20id' },
    400,
    'INVALID_TASK_ID',
  ],
  [
    'a malformed task name',
    { method: 'POST', url: '/api/task-names/%20padded/pause' },
    400,
    'INVALID_TASK_NAME',
  ],
  ['an unknown task', { method: 'GET', url: '/api/tasks/987654' }, 404, 'TASK_NOT_FOUND'],
  [
    'retrying an unknown task',
    { method: 'POST', url: '/api/tasks/987654/retry' },
    404,
    'TASK_NOT_FOUND',
  ],
  [
    'canceling an unknown task',
    { method: 'POST', url: '/api/tasks/987654/cancel' },
    404,
    'TASK_NOT_FOUND',
  ],
  ['an unknown state', { method: 'GET', url: '/api/tasks?state=done' }, 400, 'INVALID_QUERY'],
  ['a limit of 0', { method: 'GET', url: '/api/tasks?limit=0' }, 400, 'INVALID_QUERY'],
  [
    'a limit that is not a number',
    { method: 'GET', url: '/api/tasks?limit=ten' },
    400,
    'INVALID_QUERY',
  ],
  [
    'a parameter given twice',
    { method: 'GET', url: '/api/tasks?limit=1&limit=2' },
    400,
    'INVALID_QUERY',
  ],
  ['an unknown parameter', { method: 'GET', url: '/api/tasks?sort=asc' }, 400, 'INVALID_QUERY'],
  ['a malformed cursor', { method: 'GET', url: '/api/tasks?cursor=a%20b' }, 400, 'INVALID_CURSOR'],
  [
    'a cursor the store did not hand out',
    { method: 'GET', url: '/api/tasks?cursor=abc' },
    400,
    'INVALID_CURSOR',
  ],
  [
    'data with a number JSON cannot hold (1e999 reads as Infinity)',
    {
      method: 'POST',
      url: NOTIFY,
      headers: json,
      payload: '{"channel":"log","to":"a","data":{"n":1e999}}',
    },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'data nested deeper than a payload may be',
    {
      method: 'POST',
      url: NOTIFY,
      headers: json,
      payload: `{"channel":"log","to":"a","data":${'{"a":'.repeat(64)}1${'}'.repeat(64)}}`,
    },
    400,
    'INVALID_NOTIFICATION',
  ],
  [
    'a malformed percent-encoding',
    { method: 'GET', url: '/api/tasks/%E0%A4%A' },
    400,
    'BAD_REQUEST',
  ],
  [
    'an id over 100 characters',
    { method: 'GET', url: `/api/tasks/${'1'.repeat(101)}` },
    414,
    'URL_TOO_LONG',
  ],
  [
    'a task name with a NUL in the list query',
    { method: 'GET', url: '/api/tasks?name=a%00b' },
    400,
    'INVALID_QUERY',
  ],
  ['an unknown route', { method: 'GET', url: '/api/nothing' }, 404, 'NOT_FOUND'],
  ['a method the path does not take', { method: 'DELETE', url: NOTIFY }, 405, 'METHOD_NOT_ALLOWED'],
  ['GET on the notify path', { method: 'GET', url: NOTIFY }, 405, 'METHOD_NOT_ALLOWED'],
];

describe('bad input', () => {
  let s: TestService;
  before(async () => {
    s = await testService({ databaseUrl: 'sqlite::memory:' });
  });
  after(() => s.close());

  for (const [what, request, status, code] of badInputs) {
    it(`answers ${status} ${code} to ${what}`, async () => {
      const response = await s.app.inject(request);
      assert.equal(response.statusCode, status, response.body);
      assert.equal(ERROR_CODES[code], status, 'the catalogue agrees');
      const body = response.json<{ ok: false; error: { code: string; message: string } }>();
      assert.deepEqual(Object.keys(body), ['ok', 'error']);
      assert.deepEqual(Object.keys(body.error), ['code', 'message']);
      assert.equal(body.ok, false);
      assert.equal(body.error.code, code);
      assert.ok(body.error.message.length > 10, 'the message says what to fix');
    });
  }

  it('names the methods a path takes when it refuses one', async () => {
    for (const [method, url, allow] of [
      ['GET', NOTIFY, 'POST'],
      ['PUT', '/api/tasks', 'GET, HEAD'],
      ['DELETE', '/api/tasks/abc', 'GET, HEAD'],
      ['GET', '/api/tasks/abc/cancel', 'POST'],
      ['POST', '/healthz', 'GET, HEAD'],
    ] as const) {
      const response = await s.app.inject({ method, url });
      assert.equal(response.statusCode, 405, `${method} ${url}`);
      assert.equal(response.headers.allow, allow, `${method} ${url}`);
      assert.match(response.json<ErrorBody>().error.message, new RegExp(`use ${allow}$`));
    }
    // A method the path takes is still routed, by a static path or a parametric one.
    const notification = await s.app.inject({ method: 'GET', url: '/api/notifications/abc' });
    assert.equal(notification.json<ErrorBody>().error.code, 'NOTIFICATION_NOT_FOUND');
  });

  it('stored nothing for any of them', async () => {
    assert.deepEqual((await s.runtime.list()).tasks, []);
  });
});

describe('auth', () => {
  const key = 'k'.repeat(8) + '-secret-key-0123';
  let s: TestService;
  before(async () => {
    s = await testService({ apiKey: key });
  });
  after(() => s.close());

  for (const [what, authorization] of [
    ['no Authorization header', undefined],
    ['a wrong key', 'Bearer not-the-key-at-all-0000'],
    ['a key that is a prefix of the right one', `Bearer ${key.slice(0, -1)}`],
    ['another scheme', `Basic ${key}`],
  ] as const) {
    it(`refuses /api/* with ${what}`, async () => {
      const headers = authorization === undefined ? {} : { authorization };
      const response = await s.app.inject({ method: 'POST', url: NOTIFY, headers });
      assert.equal(response.statusCode, 401);
      assert.equal(response.headers['www-authenticate'], 'Bearer');
      assert.equal(response.json().error.code, 'UNAUTHORIZED');
    });
  }

  it('accepts the right bearer token, and never logs it', async () => {
    const response = await s.app.inject({
      method: 'POST',
      url: NOTIFY,
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(response.statusCode, 200);
    const tasks = await s.app.inject({
      url: '/api/tasks',
      headers: { authorization: `bearer ${key}` },
    });
    assert.equal(tasks.statusCode, 200);
    assert.ok(!JSON.stringify(s.logs.lines).includes('secret-key'));
  });

  it('refuses any /api/* request without the key, whether or not a route answers it', async () => {
    for (const [method, url] of [
      ['GET', '/api/nothing-here'],
      ['GET', '/api'],
      ['POST', '/api/tasks/1/nothing'],
      ['GET', '/api/%6eothing?x=1'],
      ['GET', '/%61pi/tasks'],
      ['HEAD', '/api/nothing-here'],
      ['DELETE', '/api/notifications/notify'],
    ] as const) {
      const response = await s.app.inject({ method, url });
      assert.equal(response.statusCode, 401, `${method} ${url}: ${response.body}`);
      if (method !== 'HEAD') assert.equal(response.json<ErrorBody>().error.code, 'UNAUTHORIZED');
    }
    const authorization = `Bearer ${key}`;
    const unknown = await s.app.inject({ url: '/api/nothing-here', headers: { authorization } });
    assert.equal(unknown.json<ErrorBody>().error.code, 'NOT_FOUND');
    assert.equal((await s.app.inject('/nothing-here')).statusCode, 404, 'outside /api');
  });

  it('refuses /metrics without the key, and leaves health and readiness open', async () => {
    for (const url of ['/healthz', '/readyz']) {
      assert.equal((await s.app.inject(url)).statusCode, 200, url);
    }
    for (const url of ['/metrics', '/metrics/']) {
      const refused = await s.app.inject(url);
      assert.equal(refused.statusCode, 401, url);
      assert.equal(refused.json<ErrorBody>().error.code, 'UNAUTHORIZED');
      assert.doesNotMatch(refused.body, /offload_tasks/);
    }
    const metrics = await s.app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /^offload_store_up 1$/m);
  });

  it('leaves /metrics open with METRICS_PUBLIC, and /api/* closed', async () => {
    const open = await testService({ apiKey: key, metricsPublic: true });
    try {
      assert.equal((await open.app.inject('/metrics')).statusCode, 200);
      assert.equal((await open.app.inject({ method: 'POST', url: NOTIFY })).statusCode, 401);
    } finally {
      await open.close();
    }
  });

  it('is off without OFFLOAD_API_KEY', async () => {
    const open = await testService();
    try {
      assert.equal((await open.app.inject({ method: 'POST', url: NOTIFY })).statusCode, 200);
      assert.equal((await open.app.inject('/metrics')).statusCode, 200);
    } finally {
      await open.close();
    }
  });
});

describe('errors of the store, as answers', () => {
  /** An error as a driver (better-sqlite3, node-postgres) throws it. */
  const driverError = (code: string, message = 'the driver says') =>
    Object.assign(new Error(message), { code });

  for (const [what, error, hint] of [
    ['SQLITE_FULL', sqliteStoreError(driverError('SQLITE_FULL')), /disk .* is full: free space/],
    ['SQLITE_READONLY', sqliteStoreError(driverError('SQLITE_READONLY')), /mounted read-write/],
    [
      'SQLITE_READONLY_DBMOVED',
      sqliteStoreError(driverError('SQLITE_READONLY_DBMOVED')),
      /mounted read-write/,
    ],
    ['SQLITE_IOERR_WRITE', sqliteStoreError(driverError('SQLITE_IOERR_WRITE')), /I\/O error/],
    ['SQLITE_CANTOPEN', sqliteStoreError(driverError('SQLITE_CANTOPEN')), /exist and are writable/],
    ['SQLITE_BUSY', sqliteStoreError(driverError('SQLITE_BUSY')), /locked by another process/],
    [
      'a SQLite file deleted or replaced',
      fileMovedError('the SQLite database file /data/offload.db was deleted'),
      /deleted or replaced/,
    ],
    ['ECONNREFUSED', postgresStoreError(driverError('ECONNREFUSED')), /cannot be reached/],
    ['57P01', postgresStoreError(driverError('57P01')), /shutting down/],
  ] as const) {
    it(`answers ${what} (on a read, say) with 503 STORE_UNAVAILABLE and what to check`, () => {
      const answer = toApiError(error);
      assert.equal(answer.code, 'STORE_UNAVAILABLE');
      assert.equal(answer.statusCode, 503);
      assert.match(answer.message, hint);
      assert.doesNotMatch(answer.message, /the driver says/, "the driver's message is for the log");
    });
  }

  it('keeps other errors a 500, and a request the client aborted a 400', () => {
    assert.equal(
      toApiError(sqliteStoreError(driverError('SQLITE_ERROR', 'no such table'))).code,
      'INTERNAL_ERROR',
    );
    assert.equal(toApiError(new TypeError('x is undefined')).code, 'INTERNAL_ERROR');
    const aborted = Object.assign(driverError('ECONNRESET', 'aborted'), { statusCode: 400 });
    assert.equal(toApiError(aborted).code, 'BAD_REQUEST');
  });
});
