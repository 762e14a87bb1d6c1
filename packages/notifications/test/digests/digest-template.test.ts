/** The default digest template: a line per event, always small enough to send. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Notifications, type DigestEvent } from '../../src/index.js';

const event = (n: number, subject: string | null, body: string | null): DigestEvent => ({
  notification: `ntf_${n}`,
  createdAt: new Date(Date.UTC(2026, 0, 14, 10, 0, n)).toISOString(),
  subject,
  body,
  html: null,
  data: null,
});

describe('the default digest template', () => {
  it('lists subject and body, either alone', async () => {
    const { digests } = new Notifications();
    const rendered = await digests.render(null, 'builds', [
      event(1, 'Build #1 passed', 'commit c1'),
      event(2, 'Build #2 failed', null),
      event(3, null, 'a note without subject'),
    ]);
    assert.equal(rendered.subject, '3 notifications (builds)');
    assert.equal(
      rendered.body,
      '- Build #1 passed: commit c1\n- Build #2 failed\n- a note without subject\n',
    );
  });

  it('cuts long text and lists the first 80 events, with a count of the rest', async () => {
    const { digests } = new Notifications();
    const events = Array.from({ length: 500 }, (_, n) => event(n, `S${n}`, 'x'.repeat(10_000)));
    const rendered = await digests.render(null, 'k', events);
    const lines = rendered.body.trimEnd().split('\n');
    assert.equal(lines.length, 81);
    assert.ok(lines[0]!.length <= 110, lines[0]);
    assert.equal(lines.at(-1), '… and 420 more');
  });
});
