/** Quiet hours and send windows, read in the recipient's zone, across daylight-saving changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deferral, readDeliveryHours } from '../../src/delivery-hours.js';
import { instantOf } from '../../src/zoned-time.js';

const BERLIN = 'Europe/Berlin';
const NIGHT = { timezone: BERLIN, quietHours: { start: '22:00', end: '07:00' } };
const iso = (text: string) => new Date(text);
const until = (hours: Parameters<typeof deferral>[0], due: string) =>
  deferral(hours, iso(due))?.until.toISOString() ?? null;

describe('quiet hours', () => {
  it('defers 23:00 Berlin (winter, UTC+1) to 07:00 local the next morning', () => {
    assert.deepEqual(deferral(NIGHT, iso('2026-01-14T22:00:00Z')), {
      until: iso('2026-01-15T06:00:00Z'),
      by: 'quietHours',
    });
  });

  it('defers 23:00 Berlin (summer, UTC+2) to 07:00 local', () => {
    assert.equal(until(NIGHT, '2026-07-14T21:00:00Z'), '2026-07-15T05:00:00.000Z');
  });

  it('defers after midnight to the same morning, and lets 07:00 and 21:59 through', () => {
    assert.equal(until(NIGHT, '2026-01-15T02:30:00Z'), '2026-01-15T06:00:00.000Z');
    assert.equal(until(NIGHT, '2026-01-15T06:00:00Z'), null);
    assert.equal(until(NIGHT, '2026-01-15T20:59:59Z'), null);
    assert.equal(until(NIGHT, '2026-01-15T21:00:00Z'), '2026-01-16T06:00:00.000Z');
  });

  it('across the March change: 23:00 CET is deferred to 07:00 CEST, 8 hours later', () => {
    // Clocks go from 02:00 to 03:00 on 29 March 2026.
    assert.equal(until(NIGHT, '2026-03-28T22:00:00Z'), '2026-03-29T05:00:00.000Z');
  });

  it('across the October change: 23:00 CEST is deferred to 07:00 CET, 9 hours later', () => {
    // Clocks go from 03:00 back to 02:00 on 25 October 2026.
    assert.equal(until(NIGHT, '2026-10-24T21:00:00Z'), '2026-10-25T06:00:00.000Z');
  });

  it('ends quiet hours in the skipped hour when clocks jump past their end', () => {
    const skipped = { timezone: BERLIN, quietHours: { start: '23:00', end: '02:30' } };
    // 02:30 does not exist on 29 March: the first moment after it is 03:00 CEST (01:00 UTC).
    assert.equal(until(skipped, '2026-03-28T23:00:00Z'), '2026-03-29T01:00:00.000Z');
  });

  it('ends quiet hours at the first 02:30 when the hour repeats, and again at the second', () => {
    const repeated = { timezone: BERLIN, quietHours: { start: '23:00', end: '02:30' } };
    // First 02:30 is CEST (00:30 UTC); 02:15 CET (01:15 UTC) is quiet again until 02:30 CET.
    assert.equal(until(repeated, '2026-10-24T22:00:00Z'), '2026-10-25T00:30:00.000Z');
    assert.equal(until(repeated, '2026-10-25T01:15:00Z'), '2026-10-25T01:30:00.000Z');
  });

  it('reads the quiet hours in another zone', () => {
    const tokyo = { timezone: 'Asia/Tokyo', quietHours: { start: '22:00', end: '07:00' } };
    assert.equal(until(tokyo, '2026-01-14T14:00:00Z'), '2026-01-14T22:00:00.000Z');
  });
});

describe('send windows', () => {
  const OFFICE = {
    timezone: BERLIN,
    sendWindow: {
      days: ['mon', 'tue', 'wed', 'thu', 'fri'] as const,
      start: '09:00',
      end: '18:00',
    },
  };
  const office = {
    ...OFFICE,
    sendWindow: { ...OFFICE.sendWindow, days: [...OFFICE.sendWindow.days] },
  };

  it('lets a delivery inside through and defers one after hours to the next opening', () => {
    // Wednesday 14 January 2026.
    assert.equal(until(office, '2026-01-14T10:00:00Z'), null);
    assert.deepEqual(deferral(office, iso('2026-01-14T17:30:00Z')), {
      until: iso('2026-01-15T08:00:00Z'),
      by: 'sendWindow',
    });
    assert.equal(until(office, '2026-01-14T06:00:00Z'), '2026-01-14T08:00:00.000Z');
  });

  it('defers a Friday evening delivery to Monday 09:00, across the March change', () => {
    // Friday 27 March 2026, 19:00 CET; Monday 30 March 09:00 is CEST.
    assert.equal(until(office, '2026-03-27T18:00:00Z'), '2026-03-30T07:00:00.000Z');
  });

  it('applies quiet hours and a send window together', () => {
    const both = { ...office, quietHours: { start: '08:00', end: '10:00' } };
    assert.equal(until(both, '2026-01-14T06:00:00Z'), '2026-01-14T09:00:00.000Z');
  });
});

describe('zoned time', () => {
  it('finds the instant of a local time on either side of both changes', () => {
    assert.equal(
      new Date(instantOf(BERLIN, 2026, 3, 29, 1, 59)).toISOString(),
      '2026-03-29T00:59:00.000Z',
    );
    assert.equal(
      new Date(instantOf(BERLIN, 2026, 3, 29, 3, 0)).toISOString(),
      '2026-03-29T01:00:00.000Z',
    );
    assert.equal(
      new Date(instantOf(BERLIN, 2026, 10, 25, 2, 30)).toISOString(),
      '2026-10-25T00:30:00.000Z',
    );
    assert.equal(
      new Date(instantOf(BERLIN, 2026, 10, 25, 3, 0)).toISOString(),
      '2026-10-25T02:00:00.000Z',
    );
  });
});

describe('reading the fields', () => {
  const problem = (fields: Record<string, unknown>, timezone: string | null = BERLIN) => {
    const read = readDeliveryHours(fields, timezone);
    return 'problem' in read ? [read.field, read.problem] : null;
  };

  it('names the field that is wrong', () => {
    assert.equal(problem({ quietHours: { start: '22:00', end: '7:00' } })?.[0], 'quietHours.end');
    assert.equal(
      problem({ quietHours: { start: '24:00', end: '07:00' } })?.[0],
      'quietHours.start',
    );
    assert.equal(problem({ quietHours: { start: '22:00', end: '22:00' } })?.[0], 'quietHours.end');
    assert.equal(problem({ quietHours: '22-07' })?.[0], 'quietHours');
    assert.equal(
      problem({ quietHours: { start: '22:00', end: '07:00', tz: 1 } })?.[0],
      'quietHours.tz',
    );
    assert.equal(problem({ quietHours: { start: '22:00', end: '07:00' } }, null)?.[0], 'timezone');
    assert.equal(
      problem({ sendWindow: { days: ['monday'], start: '09:00', end: '17:00' } })?.[0],
      'sendWindow.days',
    );
    assert.equal(
      problem({ sendWindow: { days: ['mon'], start: '17:00', end: '09:00' } })?.[0],
      'sendWindow.end',
    );
    assert.equal(
      problem({ sendWindow: { days: [], start: '09:00', end: '17:00' } })?.[0],
      'sendWindow.days',
    );
  });

  it('refuses quiet hours that cover the whole send window', () => {
    const window = { days: ['mon'], start: '09:00', end: '17:00' };
    const [field, message] = problem({
      sendWindow: window,
      quietHours: { start: '08:00', end: '18:00' },
    })!;
    assert.equal(field, 'quietHours');
    assert.match(message ?? '', /cover the whole sendWindow .* no delivery could ever be sent/);
    assert.equal(
      problem({ sendWindow: window, quietHours: { start: '16:59', end: '08:00' } }),
      null,
    );
  });

  it('keeps the days in week order', () => {
    const read = readDeliveryHours(
      { sendWindow: { days: ['fri', 'mon'], start: '09:00', end: '17:00' } },
      BERLIN,
    );
    assert.ok('value' in read);
    assert.deepEqual(read.value.sendWindow?.days, ['mon', 'fri']);
  });
});
