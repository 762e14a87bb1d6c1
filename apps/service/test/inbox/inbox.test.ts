import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InboxTokens } from '../../../../packages/notifications/src/index.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import { openStream, type SseStream } from './sse-client.js';

const API_KEY = 'inbox-test-api-key-0123456789';
const SECRET = 'inbox-secret-0123456789abcdef0123456789';
const tokens = new InboxTokens(SECRET);

interface Message {
  id: number;
  subject: string;
  readAt: string | null;
  notification: string;
  data: unknown;
}
/** What the API answers, loosely: each test reads the fields it checks. */
type Body = {
  messages: Message[];
  unread: number;
  nextCursor: number | null;
  id: string;
  error: { code: string };
  [field: string]: unknown;
};

describe('inbox: the channel, the list, read marks and the live stream', () => {
  let service: TestService;
  let base: string;
  const open: SseStream[] = [];

  before(async () => {
    service = await testService({
      apiKey: API_KEY,
      inbox: { secret: SECRET, heartbeat: 50, maxStreams: 100, maxStreamsPerRecipient: 5 },
      topics: ['news', 'billing'],
    });
    base = await service.listen();
  });
  after(async () => {
    for (const stream of open) stream.close();
    await service.close();
  });

  const call = async (method: string, path: string, token = API_KEY, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Body };
  };
  const notify = (to: string, subject: string, data?: Record<string, unknown>) =>
    call('POST', '/api/notifications/notify', API_KEY, {
      channel: 'inbox',
      to,
      subject,
      body: `${subject} body`,
      ...(data ? { data } : {}),
    });
  const stream = async (path: string, headers: Record<string, string> = {}) => {
    const opened = await openStream(`${base}${path}`, headers);
    open.push(opened);
    return opened;
  };

  it('keeps a notification on the inbox channel for its recipient, newest first, with the unread count', async () => {
    const sent = await notify('ada', 'first', { order: 1 });
    assert.equal(sent.status, 200);
    await notify('ada', 'second');
    await notify('bob', 'for bob');
    const list = await waitForList('ada', 2);
    assert.deepEqual(
      list.messages.map((m: Message) => [m.id, m.subject, m.readAt]),
      [
        [2, 'second', null],
        [1, 'first', null],
      ],
    );
    assert.equal(list.unread, 2);
    assert.equal(list.messages[1]!.notification, sent.body.id);
    assert.deepEqual(list.messages[1]!.data, { order: 1 });
    assert.equal(list.nextCursor, null);

    const page = await call('GET', '/api/recipients/ada/inbox?limit=1');
    assert.deepEqual(
      page.body.messages.map((m: Message) => m.id),
      [2],
    );
    assert.equal(page.body.nextCursor, 2);
    const older = await call(
      'GET',
      `/api/recipients/ada/inbox?limit=1&before=${page.body.nextCursor}`,
    );
    assert.deepEqual(
      older.body.messages.map((m: Message) => m.id),
      [1],
    );
    assert.equal(older.body.nextCursor, null);
  });

  it('sends a notification to stored recipients by id to the inbox of those that have one, as their preferences allow', async () => {
    const put = await call('PUT', '/api/recipients/fay', API_KEY, {
      inbox: true,
      preferences: { billing: { inbox: false } },
    });
    assert.equal(put.status, 200);
    assert.equal(put.body.inbox, true);
    assert.equal((await call('PUT', '/api/recipients/gus', API_KEY, {})).body.inbox, false);
    const byId = (topic: string, subject: string) =>
      call('POST', '/api/notifications/notify', API_KEY, {
        recipients: ['fay', 'gus'],
        topic,
        subject,
        body: subject,
      });
    const news = await byId('news', 'news for fay');
    assert.equal(news.status, 200);
    const [fay, gus] = news.body.recipients as {
      id: string;
      scheduled: { channel: string }[];
      skipped: { channel: string | null; reason: string }[];
    }[];
    assert.deepEqual(
      fay!.scheduled.map((d) => d.channel),
      ['inbox'],
    );
    assert.deepEqual(gus!.scheduled, []);
    assert.match(gus!.skipped[0]!.reason, /no address on any channel/);
    const billing = await byId('billing', 'a bill');
    const skipped = (billing.body.recipients as { skipped: { channel: string }[] }[])[0]!.skipped;
    assert.deepEqual(
      skipped.map((s) => s.channel),
      ['inbox'],
    );
    const list = await waitForList('fay', 1);
    assert.deepEqual(
      list.messages.map((m: Message) => m.subject),
      ['news for fay'],
    );

    const bad = await call('PUT', '/api/recipients/fay', API_KEY, { inbox: 'yes' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_RECIPIENT');
  });

  it('marks one message read, then all, and says how many stay unread', async () => {
    await notify('cy', 'one');
    await notify('cy', 'two');
    await notify('cy', 'three');
    await waitForList('cy', 3);
    const token = tokens.issue('cy');
    const one = await call('POST', '/api/recipients/cy/inbox/2/read', token);
    assert.deepEqual(one, { status: 200, body: { ok: true, marked: 1, unread: 2 } });
    const again = await call('POST', '/api/recipients/cy/inbox/2/read', token);
    assert.deepEqual(again.body, { ok: true, marked: 0, unread: 2 });
    const list = await call('GET', '/api/recipients/cy/inbox', token);
    assert.equal(typeof list.body.messages[1]!.readAt, 'string');
    const all = await call('POST', '/api/recipients/cy/inbox/read-all', token);
    assert.deepEqual(all.body, { ok: true, marked: 2, unread: 0 });
    const missing = await call('POST', '/api/recipients/cy/inbox/99/read', token);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'MESSAGE_NOT_FOUND');
  });

  it('streams new messages live, sends heartbeats, and resumes after Last-Event-ID without gaps or repeats', async () => {
    const token = tokens.issue('dee');
    const live = await stream(`/api/recipients/dee/inbox/stream?access_token=${token}`);
    assert.equal(live.status, 200);
    assert.match(String(live.response.headers['content-type']), /^text\/event-stream/);
    await live.waitForComments(1);
    assert.equal(live.comments[0], 'ping');
    await notify('dee', 'a');
    await notify('dee', 'b');
    const [first, second] = await live.waitForEvents(2);
    assert.deepEqual([first!.id, second!.id], ['1', '2']);
    assert.equal(JSON.parse(first!.data).subject, 'a');
    live.close();

    // Sent while no stream is open: a reconnect with the last id gets them, once, in order.
    await notify('dee', 'c');
    await notify('dee', 'd');
    await waitForList('dee', 4);
    const resumed = await stream(`/api/recipients/dee/inbox/stream?access_token=${token}`, {
      'last-event-id': '2',
    });
    const events = await resumed.waitForEvents(2);
    assert.deepEqual(
      events.map((e) => [e.id, JSON.parse(e.data).subject]),
      [
        ['3', 'c'],
        ['4', 'd'],
      ],
    );
    await notify('dee', 'e');
    await resumed.waitForEvents(3);
    assert.deepEqual(
      resumed.events.map((e) => e.id),
      ['3', '4', '5'],
    );
    // Without Last-Event-ID, a stream starts from now; `after` starts where a list left off.
    const fresh = await stream(`/api/recipients/dee/inbox/stream`, {
      authorization: `Bearer ${API_KEY}`,
    });
    const fromList = await stream(`/api/recipients/dee/inbox/stream?after=4`, {
      authorization: `Bearer ${token}`,
    });
    // An id past the newest (an inbox since emptied) starts from the newest.
    const ahead = await stream(`/api/recipients/dee/inbox/stream?access_token=${token}`, {
      'last-event-id': '1000',
    });
    await notify('dee', 'f');
    assert.deepEqual(
      (await fresh.waitForEvents(1)).map((e) => e.id),
      ['6'],
    );
    assert.deepEqual(
      (await ahead.waitForEvents(1)).map((e) => e.id),
      ['6'],
    );
    assert.deepEqual(
      (await fromList.waitForEvents(2)).map((e) => e.id),
      ['5', '6'],
    );
  });

  it('counts the open streams in /metrics', async () => {
    const before = await metric('offload_inbox_streams');
    const extra = await stream(
      `/api/recipients/eve/inbox/stream?access_token=${tokens.issue('eve')}`,
    );
    assert.equal(extra.status, 200);
    assert.equal(await metric('offload_inbox_streams'), before + 1);
    extra.close();
    await extra.ended;
    await waitUntilMetric('offload_inbox_streams', before);
  });

  it('keeps a stream open past the request timeout, on its heartbeats', async () => {
    const short = await testService({ inbox: { heartbeat: 50 } }, undefined, {
      requestTimeout: 300,
    });
    try {
      const url = await short.listen();
      const stream = await openStream(`${url}/api/recipients/ada/inbox/stream`);
      open.push(stream);
      // 20 heartbeats: a second, over three times the request timeout.
      assert.equal((await stream.waitForComments(20)).length >= 20, true);
      stream.close();
    } finally {
      await short.close();
    }
  });

  async function waitForList(id: string, count: number) {
    for (let i = 0; i < 200; i++) {
      const list = await call('GET', `/api/recipients/${id}/inbox`);
      if (list.body.messages.length >= count) return list.body;
      await new Promise((resolve) => setImmediate(resolve));
    }
    throw new Error(`the inbox of ${id} did not reach ${count} messages`);
  }

  async function metric(name: string): Promise<number> {
    const text = await (
      await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1]);
  }

  async function waitUntilMetric(name: string, value: number) {
    for (let i = 0; i < 500; i++) {
      if ((await metric(name)) === value) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(await metric(name), value);
  }
});
