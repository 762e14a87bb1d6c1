/** Stored recipients, their preferences by topic, and one-click unsubscribe, end to end. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { UnsubscribeLinks } from '../../../../packages/notifications/src/index.js';
import { tempDir } from '../../../../packages/offload/test/helpers.js';
import type { ReceivedMail } from '../fixtures/smtp-peer.js';
import type { TestService } from '../fixtures/service-harness.js';
import {
  call,
  Cleanups,
  expect,
  PUBLIC_URL,
  service,
  startPeers,
  type Peers,
  type RecipientsAnswer,
} from './fixtures.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const temp = tempDir();
after(() => temp.remove());

/** A service on a SQLite file of its own. */
async function setUp(): Promise<{ s: TestService; peers: Peers }> {
  const peers = await startPeers(cleanups);
  const path = join(temp.dir, `${Math.random().toString(36).slice(2)}.db`);
  const s = await service(cleanups, peers, { databaseUrl: `sqlite:${path}` });
  return { s, peers };
}

function notify(s: TestService, topic: string, recipients: string[]) {
  return expect<RecipientsAnswer>(200, s, 'POST', '/api/notifications/notify', {
    recipients,
    topic,
    subject: `About ${topic}`,
    body: `News on ${topic}`,
  });
}

function header(mail: ReceivedMail, name: string): string | undefined {
  return mail.mail.headerLines.find((line) => line.key === name)?.line.replace(/^[^:]+:\s*/, '');
}

describe('recipients', { timeout: 30_000 }, () => {
  it('sends on each channel a recipient has, and skips one it turned off for the topic', async () => {
    const { s, peers } = await setUp();
    await expect(200, s, 'PUT', '/api/recipients/u42', {
      email: 'ada@example.com',
      webhook: `${peers.http.url}/u42`,
      timezone: 'Europe/Berlin',
      preferences: { news: { email: false } },
    });
    const news = await notify(s, 'news', ['u42']);
    assert.deepEqual(
      news.recipients.map((r) => [r.id, r.scheduled.map((d) => d.channel), r.skipped]),
      [['u42', ['webhook'], [{ channel: 'email', reason: 'turned off for the topic news' }]]],
    );
    const hook = await peers.http.nextRequest();
    assert.equal(hook.url, '/u42');

    const billing = await notify(s, 'billing', ['u42']);
    assert.deepEqual(
      billing.recipients[0]!.scheduled.map((d) => d.channel),
      ['email', 'webhook'],
    );
    const view = await expect<{
      channel: string;
      deliveries: { channel: string; recipient: string | null }[];
    }>(200, s, 'GET', `/api/notifications/${billing.id}`);
    assert.equal(view.channel, 'several');
    assert.deepEqual(
      view.deliveries.map((d) => [d.channel, d.recipient]),
      [
        ['email', 'u42'],
        ['webhook', 'u42'],
      ],
    );
    const mail = await peers.smtp.nextMail();
    assert.equal(mail.mail.subject, 'About billing');
    await peers.http.nextRequest();
    assert.equal(peers.smtp.received.length, 1, 'the news email was never sent');
  });

  it('keeps, answers and deletes a recipient, and says why a deleted one is skipped', async () => {
    const { s } = await setUp();
    const put = await expect<{ id: string; email: string; timezone: string }>(
      200,
      s,
      'PUT',
      '/api/recipients/u7',
      { email: 'lin@example.com', timezone: 'Asia/Tokyo' },
    );
    assert.deepEqual([put.id, put.email, put.timezone], ['u7', 'lin@example.com', 'Asia/Tokyo']);
    const got = await expect<{ push: unknown[]; preferences: object }>(
      200,
      s,
      'GET',
      '/api/recipients/u7',
    );
    assert.deepEqual([got.push, got.preferences], [[], {}]);
    await expect(204, s, 'DELETE', '/api/recipients/u7');
    assert.equal((await call(s, 'GET', '/api/recipients/u7')).status, 404);
    assert.equal((await call(s, 'DELETE', '/api/recipients/u7')).status, 404);
    const answer = await notify(s, 'billing', ['u7']);
    assert.equal(answer.message, 'Nothing scheduled: every delivery was skipped');
    assert.match(answer.recipients[0]!.skipped[0]!.reason, /no recipient u7 is stored/);
  });
});

describe('one-click unsubscribe', { timeout: 30_000 }, () => {
  it('puts a signed List-Unsubscribe on the email; POSTing it turns the topic off', async () => {
    const { s, peers } = await setUp();
    await expect(200, s, 'PUT', '/api/recipients/u42', { email: 'ada@example.com' });
    await notify(s, 'billing', ['u42']);
    const mail = await peers.smtp.nextMail();
    assert.equal(header(mail, 'list-unsubscribe-post'), 'List-Unsubscribe=One-Click');
    const link = /^<([^>]+)>$/.exec(header(mail, 'list-unsubscribe') ?? '')?.[1];
    assert.ok(link !== undefined && link.startsWith(`${PUBLIC_URL}/unsubscribe?token=`), link);
    const url = new URL(link);
    const path = `${url.pathname}${url.search}`;

    // A GET (a mail scanner following the link) only shows a page.
    const page = await s.app.inject({ method: 'GET', url: path });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.body, /<form method="post"/);
    const still = await expect<{ preferences: object }>(200, s, 'GET', '/api/recipients/u42');
    assert.deepEqual(still.preferences, {});

    // The POST a mail client sends, without any API key.
    const posted = await s.app.inject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'List-Unsubscribe=One-Click',
    });
    assert.equal(posted.statusCode, 200, posted.body);
    const after = await expect<{ preferences: object }>(200, s, 'GET', '/api/recipients/u42');
    assert.deepEqual(after.preferences, { billing: { email: false } });

    const next = await notify(s, 'billing', ['u42']);
    assert.deepEqual(next.recipients[0]!.skipped, [
      { channel: 'email', reason: 'turned off for the topic billing' },
    ]);
    const other = await notify(s, 'security', ['u42']);
    assert.equal(other.recipients[0]!.scheduled.length, 1, 'other topics still arrive');
    assert.equal((await peers.smtp.nextMail()).mail.subject, 'About security');
  });

  it('refuses a tampered or expired token with a 400, and needs no API key', async () => {
    const peers = await startPeers(cleanups);
    const s = await service(cleanups, peers, { apiKey: 'k'.repeat(20) });
    const secret = Buffer.from('u'.repeat(32));
    const links = new UnsubscribeLinks({ secret, publicUrl: PUBLIC_URL });
    const good = links.token('u1', 'billing', Date.now());
    const ok = await s.app.inject({ method: 'POST', url: `/unsubscribe?token=${good}` });
    assert.equal(ok.statusCode, 200, 'the token is the credential');
    const tampered = `${good.slice(0, -2)}${good.endsWith('AA') ? 'BB' : 'AA'}`;
    const forged =
      links.token('u2', 'billing', Date.now()).split('.')[0] + '.' + good.split('.')[1];
    const expired = new UnsubscribeLinks({ secret, publicUrl: PUBLIC_URL, lifetime: 1000 }).token(
      'u1',
      'billing',
      Date.now() - 10_000,
    );
    const other = new UnsubscribeLinks({
      secret: Buffer.from('v'.repeat(32)),
      publicUrl: PUBLIC_URL,
    });
    for (const token of [
      tampered,
      forged,
      expired,
      other.token('u1', 'billing', Date.now()),
      'x',
      '',
    ]) {
      for (const method of ['GET', 'POST'] as const) {
        const answer = await s.app.inject({ method, url: `/unsubscribe?token=${token}` });
        assert.equal(answer.statusCode, 400, `${method} ${token}`);
        assert.equal(
          answer.json<{ error: { code: string } }>().error.code,
          'INVALID_UNSUBSCRIBE_TOKEN',
        );
      }
    }
    const missing = await s.app.inject({ method: 'POST', url: '/unsubscribe' });
    assert.equal(missing.statusCode, 400);
  });
});
