import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { InboxTokens } from '../../../../packages/notifications/src/index.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import { openStream, type SseStream } from './sse-client.js';

const API_KEY = 'inbox-test-api-key-0123456789';
const SECRET = 'inbox-secret-0123456789abcdef0123456789';
const tokens = new InboxTokens(SECRET);

interface Answer {
  status: number;
  code: string | undefined;
  message: string | undefined;
}

describe('inbox: hostile tokens and bad input', () => {
  let service: TestService;
  let base: string;

  before(async () => {
    service = await testService({ apiKey: API_KEY, inbox: { secret: SECRET } });
    base = await service.listen();
  });
  after(() => service.close());

  async function ask(
    method: string,
    path: string,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const response = await fetch(`${base}${path}`, { method, headers });
    const body = (await response.json()) as { error?: { code: string; message: string } };
    return { status: response.status, code: body.error?.code, message: body.error?.message };
  }
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const routes = [
    ['GET', '/api/recipients/ada/inbox'],
    ['POST', '/api/recipients/ada/inbox/1/read'],
    ['POST', '/api/recipients/ada/inbox/read-all'],
    ['GET', '/api/recipients/ada/inbox/stream'],
  ] as const;

  it("refuses another recipient's token on every inbox route, in the header or the query", async () => {
    const bobs = tokens.issue('bob');
    for (const [method, path] of routes) {
      for (const answer of [
        await ask(method, path, bearer(bobs)),
        await ask(method, `${path}?access_token=${bobs}`),
      ]) {
        assert.equal(answer.status, 403, `${method} ${path}`);
        assert.equal(answer.code, 'INBOX_TOKEN_MISMATCH');
        assert.match(answer.message!, /does not open the inbox of ada/);
      }
    }
  });

  it('refuses a tampered token, one under another secret, and one cut short', async () => {
    const good = tokens.issue('ada');
    const flipped = (good[5] === 'A' ? 'B' : 'A') + good.slice(1);
    const tampered = good.slice(0, 5) + flipped[0] + good.slice(6);
    const otherSecret = new InboxTokens('another-secret-0123456789abcdef0123').issue('ada');
    for (const token of [tampered, otherSecret]) {
      const answer = await ask('GET', '/api/recipients/ada/inbox', bearer(token));
      assert.deepEqual([answer.status, answer.code], [403, 'INBOX_TOKEN_MISMATCH']);
    }
    for (const token of [good.slice(0, 42), `${good}A`, 'x'.repeat(4000), 'not-a-token']) {
      const answer = await ask('GET', '/api/recipients/ada/inbox', bearer(token));
      assert.deepEqual([answer.status, answer.code], [401, 'INVALID_INBOX_TOKEN'], token);
    }
    assert.equal((await ask('GET', '/api/recipients/ada/inbox', bearer(good))).status, 200);
  });

  it('refuses an empty token, a malformed header, a token given twice, and no credentials', async () => {
    const cases: [Record<string, string>, string, number, string][] = [
      [{}, '?access_token=', 401, 'INVALID_INBOX_TOKEN'],
      [{ authorization: 'Bearer ' }, '', 401, 'INVALID_INBOX_TOKEN'],
      [{ authorization: 'Basic YWRhOg==' }, '', 401, 'INVALID_INBOX_TOKEN'],
      [
        bearer(tokens.issue('ada')),
        `?access_token=${tokens.issue('ada')}`,
        401,
        'INVALID_INBOX_TOKEN',
      ],
      [{}, '', 401, 'UNAUTHORIZED'],
    ];
    for (const [headers, query, status, code] of cases) {
      for (const [method, path] of routes) {
        const answer = await ask(method, `${path}${query}`, headers);
        assert.deepEqual([answer.status, answer.code], [status, code], `${method} ${path}${query}`);
        assert.ok(answer.message!.length > 20);
      }
    }
  });

  it('leaves tokens given in the query out of the logs', async () => {
    const token = tokens.issue('bob');
    await ask('GET', `/api/recipients/ada/inbox?access_token=${token}`);
    const line = await service.logs.waitFor(
      (l) => typeof l.url === 'string' && l.url.startsWith('/api/recipients/ada/inbox?'),
    );
    assert.equal(line.url, '/api/recipients/ada/inbox?access_token=[redacted]');
    assert.ok(!JSON.stringify(service.logs.lines).includes(token));
  });

  it('opens no other route with a recipient token', async () => {
    const token = tokens.issue('ada');
    for (const path of ['/api/recipients/ada', '/api/tasks', '/metrics']) {
      const answer = await ask('GET', path, bearer(token));
      assert.deepEqual([answer.status, answer.code], [401, 'UNAUTHORIZED'], path);
      const inQuery = await ask('GET', `${path}?access_token=${token}`);
      assert.equal(inQuery.status, 401, path);
    }
  });

  it('answers bad ids, cursors and Last-Event-IDs with a 400 that says what to send', async () => {
    const key = bearer(API_KEY);
    const cases: [string, string, string, Record<string, string>?][] = [
      ['GET', '/api/recipients/-bad/inbox', 'INVALID_RECIPIENT'],
      ['GET', '/api/recipients/ada/inbox?limit=0', 'INVALID_QUERY'],
      ['GET', '/api/recipients/ada/inbox?limit=101', 'INVALID_QUERY'],
      ['GET', '/api/recipients/ada/inbox?before=x', 'INVALID_CURSOR'],
      ['GET', '/api/recipients/ada/inbox?page=2', 'INVALID_QUERY'],
      ['POST', '/api/recipients/ada/inbox/0/read', 'INVALID_MESSAGE_ID'],
      ['POST', '/api/recipients/ada/inbox/abc/read', 'INVALID_MESSAGE_ID'],
      ['POST', '/api/recipients/ada/inbox/read-all?through=-1', 'INVALID_QUERY'],
      ['GET', '/api/recipients/ada/inbox/stream?after=x', 'INVALID_QUERY'],
      [
        'GET',
        '/api/recipients/ada/inbox/stream',
        'INVALID_LAST_EVENT_ID',
        { 'last-event-id': 'x' },
      ],
    ];
    for (const [method, path, code, headers] of cases) {
      const answer = await ask(method, path, { ...key, ...headers });
      assert.deepEqual([answer.status, answer.code], [400, code], `${method} ${path}`);
    }
  });

  it('refuses recipient tokens on a service without INBOX_SECRET', async () => {
    const plain = await testService({ apiKey: API_KEY });
    try {
      const url = await plain.listen();
      const response = await fetch(`${url}/api/recipients/ada/inbox`, {
        headers: bearer(tokens.issue('ada')),
      });
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(response.status, 401);
      assert.equal(body.error.code, 'INVALID_INBOX_TOKEN');
      assert.match(body.error.message, /INBOX_SECRET/);
    } finally {
      await plain.close();
    }
  });
});

describe('inbox: 1,000 streams from one client', () => {
  let service: TestService;
  let base: string;
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

  before(async () => {
    service = await testService({
      apiKey: API_KEY,
      maxConnections: 5000,
      inbox: { secret: SECRET, maxStreams: 50, maxStreamsPerRecipient: 5 },
    });
    base = await service.listen();
  });
  after(async () => {
    agent.destroy();
    await service.close();
  });

  async function openMany(paths: string[], headers: Record<string, string>) {
    const streams = await Promise.all(
      paths.map((path) => openStream(`${base}${path}`, headers, agent)),
    );
    const byStatus = new Map<number, (SseStream & { body(): Promise<string> })[]>();
    for (const stream of streams) {
      byStatus.set(stream.status, [...(byStatus.get(stream.status) ?? []), stream]);
    }
    return { streams, byStatus };
  }

  async function metrics(): Promise<string> {
    const response = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    return response.text();
  }

  it('holds the first streams of one recipient open and refuses the rest with a 429', async () => {
    const token = tokens.issue('ada');
    const { streams, byStatus } = await openMany(
      Array.from({ length: 1000 }, () => '/api/recipients/ada/inbox/stream'),
      { authorization: `Bearer ${token}` },
    );
    try {
      assert.equal(byStatus.get(200)?.length, 5);
      assert.equal(byStatus.get(429)?.length, 995);
      const body = JSON.parse(await byStatus.get(429)![0]!.body()) as { error: { code: string } };
      assert.equal(body.error.code, 'TOO_MANY_INBOX_STREAMS');
      const text = await metrics();
      assert.match(text, /^offload_inbox_streams 5$/m);
      assert.match(text, /^offload_inbox_streams_refused_total\{reason="recipient"\} 995$/m);
    } finally {
      for (const stream of streams) stream.close();
    }
  });

  it('holds at most INBOX_MAX_STREAMS across recipients and refuses the rest with a 503', async () => {
    await waitForOpen(0);
    const { streams, byStatus } = await openMany(
      Array.from({ length: 1000 }, (_, i) => `/api/recipients/r${i}/inbox/stream`),
      { authorization: `Bearer ${API_KEY}` },
    );
    try {
      assert.equal(byStatus.get(200)?.length, 50);
      assert.equal(byStatus.get(503)?.length, 950);
      const body = JSON.parse(await byStatus.get(503)![0]!.body()) as { error: { code: string } };
      assert.equal(body.error.code, 'INBOX_STREAMS_FULL');
      assert.match(
        await metrics(),
        /^offload_inbox_streams_refused_total\{reason="process"\} 950$/m,
      );
    } finally {
      for (const stream of streams) stream.close();
    }
    await waitForOpen(0);
  });

  async function waitForOpen(count: number) {
    for (let i = 0; i < 1000; i++) {
      if (new RegExp(`^offload_inbox_streams ${count}$`, 'm').test(await metrics())) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.fail(`the open streams did not come to ${count}`);
  }
});
