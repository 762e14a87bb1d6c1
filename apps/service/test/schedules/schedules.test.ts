/** The schedules API: create or replace, read, pause, resume, remove; and what a fire delivers. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testService, type LogLine, type TestService } from '../fixtures/service-harness.js';

const WEEKDAYS = { cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' };
const NOTIFICATION = { channel: 'log', to: 'ops', subject: 'Daily report', body: 'All good' };

interface Answer {
  statusCode: number;
  body: Record<string, unknown>;
}

async function call(
  s: TestService,
  method: string,
  url: string,
  payload?: object,
): Promise<Answer> {
  const response = await s.app.inject({
    method: method as 'GET',
    url,
    ...(payload === undefined ? {} : { payload }),
  });
  return {
    statusCode: response.statusCode,
    body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>),
  };
}

function errorOf(answer: Answer): { code: string; message: string } {
  return (answer.body as { error: { code: string; message: string } }).error;
}

describe('schedules API', () => {
  let s: TestService;
  before(async () => {
    s = await testService();
  });
  after(() => s.close());

  it('creates or replaces a schedule with PUT and answers it with its next run', async () => {
    const created = await call(s, 'PUT', '/api/schedules/daily-report', {
      ...WEEKDAYS,
      notification: NOTIFICATION,
    });
    assert.equal(created.statusCode, 200, JSON.stringify(created.body));
    const { nextRunAt, createdAt, updatedAt, ...rest } = created.body;
    assert.deepEqual(rest, {
      name: 'daily-report',
      ...WEEKDAYS,
      catchUp: 'skip',
      maxCatchUp: 100,
      notification: NOTIFICATION,
      paused: false,
      lastRunAt: null,
      lastTaskId: null,
    });
    assert.match(String(nextRunAt), /^\d{4}-\d\d-\d\dT0[78]:00:00\.000Z$/, 'at 09:00 in Berlin');
    assert.equal(createdAt, updatedAt);

    const again = await call(s, 'PUT', '/api/schedules/daily-report', {
      ...WEEKDAYS,
      notification: { ...NOTIFICATION, body: 'Still good' },
    });
    assert.equal(again.statusCode, 200);
    assert.equal(again.body.nextRunAt, nextRunAt, 'the same times keep the next run');
    assert.deepEqual(again.body.notification, { ...NOTIFICATION, body: 'Still good' });

    const interval = await call(s, 'PUT', '/api/schedules/heartbeat', {
      every: '30s',
      catchUp: 'one',
      notification: {},
    });
    assert.equal(interval.statusCode, 200, JSON.stringify(interval.body));
    assert.deepEqual([interval.body.every, interval.body.catchUp], ['30s', 'one']);
    assert.equal(
      Date.parse(String(interval.body.nextRunAt)) - Date.parse(String(interval.body.createdAt)),
      30_000,
    );
  });

  it('refuses a bad rule with a 400 naming the field, and a bad notification as notify does', async () => {
    const refused: [object, string, RegExp][] = [
      [
        { cron: '61 * * * *' },
        'INVALID_SCHEDULE',
        /^cron: "61 \* \* \* \*" is not a cron expression/,
      ],
      [
        { cron: '0 9 * * *', timezone: 'Mars/Olympus' },
        'INVALID_SCHEDULE',
        /^timezone: must be an IANA time zone/,
      ],
      [{ every: '500ms' }, 'INVALID_SCHEDULE', /^every: must be at least 1s, got "500ms"/],
      [{ every: 30 }, 'INVALID_SCHEDULE', /^every: must be a duration such as "30s"/],
      [
        { every: '1m', catchUp: 'most' },
        'INVALID_SCHEDULE',
        /^catchUp: must be one of skip, one, all/,
      ],
      [{}, 'INVALID_SCHEDULE', /needs cron .* or every/],
      [
        { cron: '* * * * *', when: 'now' },
        'INVALID_SCHEDULE',
        /"when" is not a field of a schedule/,
      ],
      [
        { cron: '* * * * *', notification: { channel: 'pigeon', to: 'x' } },
        'UNKNOWN_CHANNEL',
        /^notification: /,
      ],
      [
        {
          cron: '* * * * *',
          notification: { channel: 'log', to: 'ops', subject: 'a'.repeat(201) },
        },
        'INVALID_NOTIFICATION',
        /^notification: /,
      ],
    ];
    for (const [body, code, message] of refused) {
      const answer = await call(s, 'PUT', '/api/schedules/bad', {
        notification: NOTIFICATION,
        ...body,
      });
      assert.equal(answer.statusCode, 400, JSON.stringify(body));
      assert.equal(errorOf(answer).code, code, JSON.stringify(body));
      assert.match(errorOf(answer).message, message, JSON.stringify(body));
    }
    const missing = await call(s, 'PUT', '/api/schedules/bad', { every: '1m' });
    assert.match(errorOf(missing).message, /^notification: is required/);
    assert.equal((await call(s, 'GET', '/api/schedules/bad')).statusCode, 404, 'nothing stored');
  });

  it('lists, reads, pauses, resumes and deletes; an unknown schedule is a 404', async () => {
    await call(s, 'PUT', '/api/schedules/weekly', { cron: '0 8 * * 1', notification: {} });
    const listed = await call(s, 'GET', '/api/schedules');
    assert.ok(
      (listed.body.schedules as { name: string }[]).some((schedule) => schedule.name === 'weekly'),
    );
    const paused = await call(s, 'POST', '/api/schedules/weekly/pause');
    assert.deepEqual(
      [paused.statusCode, paused.body.paused, paused.body.nextRunAt],
      [200, true, null],
    );
    const resumed = await call(s, 'POST', '/api/schedules/weekly/resume');
    assert.equal(resumed.body.paused, false);
    assert.match(String(resumed.body.nextRunAt), /T08:00:00\.000Z$/);
    assert.equal((await call(s, 'GET', '/api/schedules/weekly')).body.paused, false);
    assert.equal((await call(s, 'DELETE', '/api/schedules/weekly')).statusCode, 204);
    for (const [method, url] of [
      ['GET', '/api/schedules/weekly'],
      ['DELETE', '/api/schedules/weekly'],
      ['POST', '/api/schedules/weekly/pause'],
      ['POST', '/api/schedules/weekly/resume'],
    ] as const) {
      const answer = await call(s, method, url);
      assert.equal(answer.statusCode, 404, `${method} ${url}`);
      assert.equal(errorOf(answer).code, 'SCHEDULE_NOT_FOUND');
      assert.match(errorOf(answer).message, /no schedule is named "weekly"/);
    }
  });

  it('delivers at each due time what a notify request with the same body delivers', async () => {
    const delivered = (line: LogLine) =>
      line.msg === 'notification delivered on the log channel' && line.subject === 'Tick';
    const body = { channel: 'log', to: ['a', 'b'], subject: 'Tick', body: 'tock' };
    const notified = await call(s, 'POST', '/api/notifications/notify', body);
    assert.equal(notified.statusCode, 200);
    const byNotify = await s.logs.waitForCount(delivered, 2);
    await call(s, 'PUT', '/api/schedules/tick', { cron: '* * * * * *', notification: body });
    const bySchedule = (await s.logs.waitForCount(delivered, 4)).slice(2, 4);
    await call(s, 'POST', '/api/schedules/tick/pause');
    const fields = ({ channel, to, subject, body: text, data }: LogLine) => ({
      channel,
      to,
      subject,
      body: text,
      data,
    });
    const sorted = (lines: LogLine[]) =>
      lines.map(fields).sort((x, y) => String(x.to).localeCompare(String(y.to)));
    assert.deepEqual(sorted(bySchedule), sorted(byNotify));
    const tick = await call(s, 'GET', '/api/schedules/tick');
    const task = await call(s, 'GET', `/api/tasks/${String(tick.body.lastTaskId)}`);
    assert.equal(task.body.name, 'notifications.scheduled');
  });
});

describe('schedules API with OFFLOAD_API_KEY', () => {
  let s: TestService;
  before(async () => {
    s = await testService({ apiKey: 'secret-key-for-tests' });
  });
  after(() => s.close());

  it('needs the bearer key, as every /api route', async () => {
    const body = { every: '1m', notification: {} };
    const refused = await call(s, 'PUT', '/api/schedules/locked', body);
    assert.equal(refused.statusCode, 401);
    assert.equal((await call(s, 'GET', '/api/schedules')).statusCode, 401);
    const allowed = await s.app.inject({
      method: 'PUT',
      url: '/api/schedules/locked',
      payload: body,
      headers: { authorization: 'Bearer secret-key-for-tests' },
    });
    assert.equal(allowed.statusCode, 200);
  });
});
