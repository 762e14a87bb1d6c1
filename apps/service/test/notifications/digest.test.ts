/**
 * Digests end to end: notifications with the same recipient and key, gathered while a window is
 * open, arrive as one email at a real SMTP server; the window is stored, so a SIGKILLed service
 * sends it after a restart, once.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import type { Clock } from '../../../../packages/offload/src/index.js';
import { tempDir, waitUntil } from '../../../../packages/offload/test/helpers.js';
import type { DigestAnswer, DigestView } from '../../src/digest-notify.js';
import type { NotificationView } from '../../src/notification-view.js';
import {
  listeningUrl,
  spawnCli,
  testService,
  type Child,
  type TestService,
} from '../fixtures/service-harness.js';
import { startSmtpPeer, type SmtpPeer } from '../fixtures/smtp-peer.js';
import { call, channelConfig, Cleanups, expect, startPeers } from '../templates/fixtures.js';

const cleanups = new Cleanups();
const children: Child[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      child.process.kill('SIGKILL');
      await child.exited();
    }
  }
  await cleanups.run();
});
const temp = tempDir();
after(() => temp.remove());

interface DigestNotifyAnswer {
  id: string;
  message: string;
  digests: DigestAnswer[];
}

const ADA = 'ada@example.com';

function event(n: number, window = '2s', key = 'builds') {
  return {
    channel: 'email',
    to: ADA,
    subject: `Build #${n} passed`,
    body: `commit c${n}`,
    digest: { key, window },
  };
}

/** The events a digest email lists, by their subject. */
function listed(text: string): string[] {
  return [...text.matchAll(/^- (Build #\d+) passed: commit c\d+$/gm)].map((m) => m[1]!);
}

async function view(
  s: TestService,
  id: string,
): Promise<NotificationView & { digests: DigestView[] }> {
  return expect(200, s, 'GET', `/api/notifications/${id}`);
}

describe('digests', { timeout: 60_000 }, () => {
  it('turns 50 notifications in a 2 s window into one email listing all 50', async () => {
    const peers = await startPeers(cleanups);
    const s = cleanups.add(await testService(channelConfig(peers)));
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        expect<DigestNotifyAnswer>(200, s, 'POST', '/api/notifications/notify', event(n)),
      ),
    );
    const windows = new Set(answers.map((a) => a.digests[0]!.task));
    assert.equal(windows.size, 1, 'every notification joined the one window');
    const open = await view(s, answers[7]!.id);
    assert.deepEqual(
      [open.deliveries, open.digests[0]!.state, open.digests[0]!.key, open.digests[0]!.closesAt],
      [[], 'queued', 'builds', answers[0]!.digests[0]!.closesAt],
    );

    const mail = await peers.smtp.nextMail(10_000);
    assert.equal(mail.mail.subject, '50 notifications (builds)');
    assert.deepEqual(mail.envelope.to, [ADA]);
    assert.deepEqual(
      listed(mail.mail.text ?? '').sort(),
      Array.from({ length: 50 }, (_, n) => `Build #${n}`).sort(),
    );

    // Once the window's task and its delivery are done, nothing else was sent.
    let closed: DigestView | undefined;
    await waitUntil('the digest to be delivered', async () => {
      closed = (await view(s, answers[7]!.id)).digests[0];
      if (closed?.delivery == null) return false;
      return (await s.runtime.get(closed.delivery))?.state === 'succeeded';
    });
    assert.deepEqual([closed!.state, closed!.events], ['succeeded', 50]);
    assert.equal(peers.smtp.received.length, 1);

    // The window by its own id: the digest, and the delivery that sent it.
    const window = await view(s, closed!.task);
    assert.deepEqual(
      [window.channel, window.digests[0]!.events, window.deliveries.map((d) => [d.id, d.state])],
      ['email', 50, [[closed!.delivery, 'succeeded']]],
    );
  });

  it('sends one digest per recipient and key, rendered from a stored template', async () => {
    const peers = await startPeers(cleanups);
    const s = cleanups.add(await testService(channelConfig(peers)));
    await expect(200, s, 'PUT', '/api/templates/build-digest', {
      subject: '{{ count }} builds',
      text: '{% for e in events %}{{ e.data.build }};{% endfor %}',
    });
    const send = (to: string, key: string, build: number) =>
      expect<DigestNotifyAnswer>(200, s, 'POST', '/api/notifications/notify', {
        channel: 'email',
        to,
        body: 'done',
        data: { build },
        digest: { key, window: '1s', template: 'build-digest' },
      });
    await send(ADA, 'builds', 1);
    await send('lin@example.com', 'builds', 2);
    await send(ADA, 'deploys', 3);
    await send(ADA, 'builds', 4);
    const mails = [
      await peers.smtp.nextMail(10_000),
      await peers.smtp.nextMail(10_000),
      await peers.smtp.nextMail(10_000),
    ];
    const seen = mails.map((m) => [m.envelope.to[0], m.mail.subject, m.mail.text?.trim()]).sort();
    assert.deepEqual(seen, [
      [ADA, '1 builds', '3;'],
      [ADA, '2 builds', '1;4;'],
      ['lin@example.com', '1 builds', '2;'],
    ]);
  });

  it('puts a notification that comes as the window closes into the next window', async () => {
    const clock: Clock & { time: number } = {
      time: Date.parse('2026-01-14T10:00:00Z'),
      now() {
        return this.time;
      },
    };
    const peers = await startPeers(cleanups);
    const s = cleanups.add(await testService(channelConfig(peers), undefined, { clock }));
    const send = async (n: number) =>
      (await expect<DigestNotifyAnswer>(200, s, 'POST', '/api/notifications/notify', event(n)))
        .digests[0]!;
    const first = await send(1);
    assert.equal(first.closesAt, '2026-01-14T10:00:02.000Z');
    clock.time += 1999;
    assert.equal((await send(2)).task, first.task);
    clock.time += 1;
    const next = await send(3);
    assert.notEqual(next.task, first.task);
    assert.equal(next.closesAt, '2026-01-14T10:00:04.000Z');

    // The first window closes; a request that read its clock before (1 s ago) still finds it
    // closed and goes to the next window.
    await s.runtime.drain();
    clock.time -= 1000;
    assert.equal((await send(4)).task, next.task);
    clock.time += 3000;
    await s.runtime.drain();
    const mails = [await peers.smtp.nextMail(), await peers.smtp.nextMail()];
    assert.deepEqual(mails.map((m) => listed(m.mail.text ?? '').sort()).sort(), [
      ['Build #1', 'Build #2'],
      ['Build #3', 'Build #4'],
    ]);
  });

  it('joins once for a repeated Idempotency-Key, and refuses the key with another body', async () => {
    const peers = await startPeers(cleanups);
    const s = cleanups.add(await testService(channelConfig(peers)));
    const send = (body: object) =>
      s.app.inject({
        method: 'POST',
        url: '/api/notifications/notify',
        payload: body,
        headers: { 'idempotency-key': 'build-7' },
      });
    const first = await send(event(7, '1s'));
    const again = await send(event(7, '1s'));
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), first.json());
    const other = await send(event(8, '1s'));
    assert.equal(other.statusCode, 422, other.body);
    assert.equal(other.json<{ error: { code: string } }>().error.code, 'IDEMPOTENCY_KEY_REUSED');
    const mail = await peers.smtp.nextMail(10_000);
    assert.deepEqual(listed(mail.mail.text ?? ''), ['Build #7']);
  });

  it('refuses bad digests with a 400 naming the field', async () => {
    const peers = await startPeers(cleanups);
    const s = cleanups.add(await testService(channelConfig(peers)));
    const refused: [unknown, string, RegExp][] = [
      [{ key: 'builds', window: '1 hour' }, 'digest.window', /^digest.window must be a duration/],
      [{ key: 'builds', window: '0s' }, 'digest.window', /from 1s to 7d/],
      [{ key: 'builds', window: '8d' }, 'digest.window', /from 1s to 7d/],
      [{ key: 'builds', window: 3600 }, 'digest.window', /got number$/],
      [{ key: 'builds' }, 'digest.window', /^digest.window/],
      [{ key: '', window: '1h' }, 'digest.key', /^digest.key must be/],
      [{ key: 'a b', window: '1h' }, 'digest.key', /^digest.key must be/],
      [{ key: 'builds', window: '1h', every: 2 }, 'digest.every', /^digest takes key, window/],
      ['builds', 'digest', /^digest must be an object/],
    ];
    for (const [digest, field, message] of refused) {
      const answer = await call(s, 'POST', '/api/notifications/notify', { ...event(1), digest });
      assert.equal(answer.status, 400, `${field}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error?.code, 'INVALID_NOTIFICATION');
      assert.match(answer.body.error?.message ?? '', message);
    }
    const critical = await call(s, 'POST', '/api/notifications/notify', {
      ...event(1),
      critical: true,
    });
    assert.match(critical.body.error?.message ?? '', /^a critical notification is sent at once/);
    const unknown = await call(s, 'POST', '/api/notifications/notify', {
      ...event(1),
      digest: { key: 'builds', window: '1h', template: 'nope' },
    });
    assert.equal(unknown.status, 400, JSON.stringify(unknown.body));
    assert.equal(unknown.body.error?.code, 'UNKNOWN_TEMPLATE');
    assert.equal((await s.runtime.list({ limit: 1000 })).tasks.length, 0, 'nothing stored');
  });
});

describe('a digest across a crash', { timeout: 90_000 }, () => {
  it('SIGKILLed inside the window: after a restart one digest arrives with every event, once', async () => {
    const peer: SmtpPeer = cleanups.add(await startSmtpPeer());
    const env = {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      DATABASE_URL: `sqlite:${join(temp.dir, 'digest.db')}`,
      SMTP_URL: `smtp://127.0.0.1:${peer.port}`,
      EMAIL_FROM: 'Offload <noreply@offload.test>',
    };
    const start = () => {
      const child = spawnCli(['serve'], env);
      children.push(child);
      return child;
    };
    const first = start();
    const url = await listeningUrl(first.logs);
    const ids: string[] = [];
    for (let n = 0; n < 20; n += 1) {
      const response = await fetch(`${url}/api/notifications/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event(n, '3s', 'crash')),
      });
      assert.equal(response.status, 200, await response.clone().text());
      ids.push(((await response.json()) as DigestNotifyAnswer).id);
    }
    first.process.kill('SIGKILL');
    assert.equal(await first.exited(), 'SIGKILL');
    assert.equal(peer.received.length, 0, 'killed inside the window');

    const second = start();
    const again = await listeningUrl(second.logs);
    const mail = await peer.nextMail(20_000);
    assert.deepEqual(
      listed(mail.mail.text ?? '').sort(),
      Array.from({ length: 20 }, (_, n) => `Build #${n}`).sort(),
    );
    await waitUntil(
      'the digest delivery to finish',
      async () => {
        const digest = (
          (await (await fetch(`${again}/api/notifications/${ids[0]}`)).json()) as {
            digests: DigestView[];
          }
        ).digests[0];
        if (digest?.delivery == null) return false;
        const task = (await (await fetch(`${again}/api/tasks/${digest.delivery}`)).json()) as {
          state: string;
        };
        return task.state === 'succeeded';
      },
      { timeout: 20_000 },
    );
    assert.equal(peer.received.length, 1, 'one digest, sent once');
  });
});
