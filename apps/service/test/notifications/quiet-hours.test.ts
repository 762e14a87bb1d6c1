/**
 * Quiet hours and send windows of stored recipients, end to end with an injected clock: deferred
 * deliveries are queued until the hours end in the recipient's zone, across daylight-saving
 * changes and restarts; critical ones go at once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { Clock, TaskView } from '../../../../packages/offload/src/index.js';
import { tempDir } from '../../../../packages/offload/test/helpers.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import type { ServiceConfig } from '../../src/config.js';
import type { NotificationView } from '../../src/notification-view.js';
import {
  call,
  channelConfig,
  Cleanups,
  expect,
  startPeers,
  type Peers,
} from '../templates/fixtures.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const temp = tempDir();
after(() => temp.remove());

/** A clock the test sets. */
class TestClock implements Clock {
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  set(iso: string): void {
    this.time = Date.parse(iso);
  }
}

interface DeferredAnswer {
  id: string;
  recipients: {
    id: string;
    scheduled: { channel: string; task: string; deferredUntil?: string; deferredBy?: string }[];
  }[];
}

const NIGHT = {
  email: 'ada@example.com',
  timezone: 'Europe/Berlin',
  quietHours: { start: '22:00', end: '07:00' },
};

async function setUp(
  clock: TestClock,
  overrides: Partial<ServiceConfig> = {},
  peers?: Peers,
): Promise<{ s: TestService; peers: Peers }> {
  const p = peers ?? (await startPeers(cleanups));
  const s = cleanups.add(await testService(channelConfig(p, overrides), undefined, { clock }));
  return { s, peers: p };
}

function notify(s: TestService, body: object = {}) {
  return expect<DeferredAnswer>(200, s, 'POST', '/api/notifications/notify', {
    recipients: ['ada'],
    subject: 'Build finished',
    body: 'green',
    ...body,
  });
}

async function task(s: TestService, id: string): Promise<TaskView> {
  return expect<TaskView>(200, s, 'GET', `/api/tasks/${id}`);
}

describe('quiet hours', { timeout: 30_000 }, () => {
  const cases: [string, string, string][] = [
    ['in winter (UTC+1)', '2026-01-14T22:00:00.000Z', '2026-01-15T06:00:00.000Z'],
    ['in summer (UTC+2)', '2026-07-14T21:00:00.000Z', '2026-07-15T05:00:00.000Z'],
    // Clocks go from 02:00 to 03:00 on 29 March: 23:00 CET to 07:00 CEST is 7 hours.
    ['across the March change', '2026-03-28T22:00:00.000Z', '2026-03-29T05:00:00.000Z'],
    // Clocks go from 03:00 back to 02:00 on 25 October: 23:00 CEST to 07:00 CET is 9 hours.
    ['across the October change', '2026-10-24T21:00:00.000Z', '2026-10-25T06:00:00.000Z'],
  ];
  for (const [when, at, until] of cases) {
    it(`defers a delivery at 23:00 Europe/Berlin to 07:00 local, ${when}`, async () => {
      const clock = new TestClock(Date.parse(at));
      const { s, peers } = await setUp(clock);
      await expect(200, s, 'PUT', '/api/recipients/ada', NIGHT);
      const answer = await notify(s);
      const [scheduled] = answer.recipients[0]!.scheduled;
      assert.deepEqual(scheduled, {
        channel: 'email',
        task: scheduled!.task,
        deferredUntil: until,
        deferredBy: 'quietHours',
      });
      const view = await task(s, scheduled!.task);
      assert.deepEqual([view.state, view.runAt], ['queued', until]);

      // Nothing goes out a minute before; at 07:00 local it does.
      clock.time = Date.parse(until) - 60_000;
      await s.runtime.drain();
      assert.equal((await task(s, scheduled!.task)).state, 'queued');
      assert.equal(peers.smtp.received.length, 0);
      clock.time = Date.parse(until);
      await s.runtime.drain();
      assert.equal((await task(s, scheduled!.task)).state, 'succeeded');
      assert.equal((await peers.smtp.nextMail()).mail.subject, 'Build finished');
    });
  }

  it('sends a critical notification at once, in quiet hours', async () => {
    const clock = new TestClock(Date.parse('2026-01-14T22:00:00Z'));
    const { s, peers } = await setUp(clock);
    await expect(200, s, 'PUT', '/api/recipients/ada', NIGHT);
    const answer = await notify(s, { critical: true, subject: 'Server down' });
    const [scheduled] = answer.recipients[0]!.scheduled;
    assert.deepEqual(Object.keys(scheduled!), ['channel', 'task']);
    await s.runtime.drain();
    assert.equal((await task(s, scheduled!.task)).state, 'succeeded');
    assert.equal((await peers.smtp.nextMail()).mail.subject, 'Server down');
  });

  it('defers only the recipients in quiet hours, and shows runAt per delivery', async () => {
    const clock = new TestClock(Date.parse('2026-01-14T22:00:00Z'));
    const { s } = await setUp(clock);
    await expect(200, s, 'PUT', '/api/recipients/ada', NIGHT);
    await expect(200, s, 'PUT', '/api/recipients/lin', {
      email: 'lin@example.com',
      timezone: 'America/New_York',
      quietHours: { start: '22:00', end: '07:00' },
    });
    const answer = await notify(s, { recipients: ['ada', 'lin'] });
    const [ada, lin] = answer.recipients.map((r) => r.scheduled[0]!);
    assert.equal(ada!.deferredUntil, '2026-01-15T06:00:00.000Z');
    assert.equal(lin!.deferredUntil, undefined, '17:00 in New York');
    const view = await expect<NotificationView>(200, s, 'GET', `/api/notifications/${answer.id}`);
    assert.deepEqual(
      view.deliveries.map((d) => [d.recipient, d.state, d.runAt]),
      [
        ['ada', 'queued', '2026-01-15T06:00:00.000Z'],
        ['lin', 'queued', '2026-01-14T22:00:00.000Z'],
      ],
    );
  });

  it('defers from sendAt, and to the next opening of a weekly send window', async () => {
    // Friday 16 January 2026, 12:00 in Berlin.
    const clock = new TestClock(Date.parse('2026-01-16T11:00:00Z'));
    const { s } = await setUp(clock);
    await expect(200, s, 'PUT', '/api/recipients/ada', {
      email: 'ada@example.com',
      timezone: 'Europe/Berlin',
      sendWindow: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' },
    });
    const answer = await notify(s, { sendAt: '2026-01-16T18:00:00+01:00' });
    const [scheduled] = answer.recipients[0]!.scheduled;
    assert.deepEqual(
      [scheduled!.deferredUntil, scheduled!.deferredBy],
      ['2026-01-19T08:00:00.000Z', 'sendWindow'],
    );
  });

  it('holds a digest that closes in quiet hours until they end', async () => {
    const clock = new TestClock(Date.parse('2026-01-14T20:30:00Z'));
    const { s, peers } = await setUp(clock);
    await expect(200, s, 'PUT', '/api/recipients/ada', NIGHT);
    // 21:30 in Berlin: the window closes at 22:30, inside the quiet hours.
    const answer = await notify(s, { digest: { key: 'builds', window: '1h' } });
    const [scheduled] = answer.recipients[0]!.scheduled;
    assert.deepEqual(
      [scheduled!.deferredBy, scheduled!.deferredUntil],
      ['digest', '2026-01-14T21:30:00.000Z'],
    );
    clock.set('2026-01-14T21:30:00Z');
    await s.runtime.drain();
    const view = await expect<{ digests: { state: string; delivery: string }[] }>(
      200,
      s,
      'GET',
      `/api/notifications/${answer.id}`,
    );
    const [digest] = view.digests;
    assert.equal(digest!.state, 'succeeded');
    const delivery = await task(s, digest!.delivery);
    assert.deepEqual([delivery.state, delivery.runAt], ['queued', '2026-01-15T06:00:00.000Z']);
    assert.equal(peers.smtp.received.length, 0);
    clock.set('2026-01-15T06:00:00Z');
    await s.runtime.drain();
    assert.equal((await peers.smtp.nextMail()).mail.subject, '1 notification (builds)');
  });

  it('sends deferred deliveries at the right time after a restart', async () => {
    const databaseUrl = `sqlite:${join(temp.dir, 'restart.db')}`;
    const clock = new TestClock(Date.parse('2026-03-28T22:00:00Z'));
    const first = await setUp(clock, { databaseUrl });
    await expect(200, first.s, 'PUT', '/api/recipients/ada', NIGHT);
    const answer = await notify(first.s);
    const id = answer.recipients[0]!.scheduled[0]!.task;
    await first.s.close();

    // Another process on the same database, the clock past midnight and past the change.
    clock.set('2026-03-29T04:59:00Z');
    const { s } = await setUp(clock, { databaseUrl }, first.peers);
    await s.runtime.drain();
    const waiting = await task(s, id);
    assert.deepEqual([waiting.state, waiting.runAt], ['queued', '2026-03-29T05:00:00.000Z']);
    assert.equal(first.peers.smtp.received.length, 0);
    clock.set('2026-03-29T05:00:00Z');
    await s.runtime.drain();
    assert.equal((await task(s, id)).state, 'succeeded');
    assert.equal((await first.peers.smtp.nextMail()).envelope.to[0], 'ada@example.com');
  });
});

describe('delivery hours: bad input', { timeout: 30_000 }, () => {
  const refused: [string, object, string][] = [
    ['quiet hours without a zone', { quietHours: { start: '22:00', end: '07:00' } }, 'timezone'],
    [
      'a time out of range',
      { ...NIGHT, quietHours: { start: '25:00', end: '07:00' } },
      'quietHours.start',
    ],
    [
      'a time without minutes',
      { ...NIGHT, quietHours: { start: '22', end: '07:00' } },
      'quietHours.start',
    ],
    ['equal ends', { ...NIGHT, quietHours: { start: '07:00', end: '07:00' } }, 'quietHours.end'],
    ['an unknown zone', { ...NIGHT, timezone: 'Europe/Atlantis' }, 'timezone'],
    [
      'an unknown weekday',
      { ...NIGHT, sendWindow: { days: ['funday'], start: '09:00', end: '17:00' } },
      'sendWindow.days',
    ],
    [
      'a window ending before it starts',
      { ...NIGHT, sendWindow: { days: ['mon'], start: '17:00', end: '09:00' } },
      'sendWindow.end',
    ],
  ];
  for (const [what, body, field] of refused) {
    it(`refuses ${what} with a 400 naming ${field}`, async () => {
      const { s } = await setUp(new TestClock(Date.now()));
      const answer = await call(s, 'PUT', '/api/recipients/ada', body);
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.equal(answer.body.error?.code, 'INVALID_RECIPIENT');
      assert.ok(answer.body.error?.message.includes(field), answer.body.error?.message);
    });
  }

  it('refuses critical that is not true or false', async () => {
    const { s } = await setUp(new TestClock(Date.now()));
    await expect(200, s, 'PUT', '/api/recipients/ada', NIGHT);
    const answer = await call(s, 'POST', '/api/notifications/notify', {
      recipients: ['ada'],
      body: 'x',
      critical: 'yes',
    });
    assert.equal(answer.status, 400);
    assert.match(answer.body.error?.message ?? '', /^critical must be true or false/);
  });
});
