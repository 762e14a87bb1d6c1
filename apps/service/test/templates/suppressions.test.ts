/**
 * The stored suppression list: a push endpoint that answered 410 is skipped by the next process on
 * the same store, after a restart (SQLite file) and from another process (PostgreSQL).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { finished, tempDir } from '../../../../packages/offload/test/helpers.js';
import {
  dropSchema,
  TEST_DATABASE_URL,
  uniqueSchema,
} from '../../../../packages/offload/test/pg-helpers.js';
import { newSubscription } from '../fixtures/push-service.js';
import { listeningUrl, spawnCli, type TestService } from '../fixtures/service-harness.js';
import type { ReceivedRequest } from '../../../../packages/notifications/test/fixtures/http-peer.js';
import {
  Cleanups,
  expect,
  service,
  startPeers,
  VAPID,
  type Peers,
  type RecipientsAnswer,
} from './fixtures.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const temp = tempDir();
after(() => temp.remove());

/** Peers whose push endpoint `/push/gone` answers 410 Gone; the rest 201. */
async function peersWithAGoneEndpoint(): Promise<{ peers: Peers; pushed: ReceivedRequest[] }> {
  const pushed: ReceivedRequest[] = [];
  const peers = await startPeers(cleanups, {
    http: (request, response) => {
      if (request.url === '/push/gone') pushed.push(request);
      response.writeHead(request.url === '/push/gone' ? 410 : 201).end();
    },
  });
  return { peers, pushed };
}

function subscription(peers: Peers) {
  const browser = newSubscription();
  return {
    endpoint: `${peers.http.url}/push/gone`,
    keys: { p256dh: browser.p256dh, auth: browser.auth },
  };
}

function notify(s: TestService): Promise<RecipientsAnswer> {
  return expect<RecipientsAnswer>(200, s, 'POST', '/api/notifications/notify', {
    recipients: ['u5'],
    topic: 'billing',
    subject: 'Invoice',
    body: 'Your invoice is ready',
  });
}

/** Sends once to u5, whose push endpoint answers 410, and waits until it is suppressed. */
async function learnGone(s: TestService, peers: Peers): Promise<void> {
  await expect(200, s, 'PUT', '/api/recipients/u5', {
    webhook: `${peers.http.url}/hook`,
    push: [subscription(peers)],
  });
  const first = await notify(s);
  const push = first.recipients[0]!.scheduled.find((d) => d.channel === 'push')!;
  const task = await finished(s.runtime, push.task);
  assert.equal(task.state, 'failed');
  assert.match(task.errors.at(-1)!.message, /410/);
}

describe('the suppression list', { timeout: 60_000 }, () => {
  it('skips a push endpoint that answered 410 after a restart, and lets an operator remove it', async () => {
    const { peers, pushed } = await peersWithAGoneEndpoint();
    const databaseUrl = `sqlite:${join(temp.dir, 'suppressions.db')}`;
    const first = await service(cleanups, peers, { databaseUrl });
    await learnGone(first, peers);
    await first.close();

    const restarted = await service(cleanups, peers, { databaseUrl });
    const listed = await expect<{
      suppressions: { id: string; channel: string; address: string }[];
    }>(200, restarted, 'GET', '/api/suppressions');
    assert.equal(listed.suppressions.length, 1);
    const [entry] = listed.suppressions;
    assert.deepEqual([entry!.channel, entry!.address], ['push', `${peers.http.url}/push/gone`]);

    const answer = await notify(restarted);
    assert.deepEqual(
      answer.recipients[0]!.scheduled.map((d) => d.channel),
      ['webhook'],
    );
    assert.equal(answer.recipients[0]!.skipped.length, 1);
    assert.equal(answer.recipients[0]!.skipped[0]!.channel, 'push');
    assert.match(answer.recipients[0]!.skipped[0]!.reason, /suppressed since .*410 Gone/);

    // A notification to the address itself fails at once, without a call.
    const { id } = await expect<{ id: string }>(
      200,
      restarted,
      'POST',
      '/api/notifications/notify',
      {
        channel: 'push',
        to: subscription(peers),
        body: 'again',
      },
    );
    const direct = await finished(restarted.runtime, id);
    assert.equal(direct.state, 'failed');
    assert.match(direct.errors.at(-1)!.message, /not sent: the address is suppressed/);
    assert.equal(pushed.length, 1, 'the gone endpoint was called once, before the restart');

    await expect(204, restarted, 'DELETE', `/api/suppressions/${entry!.id}`);
    const removed = await expect(404, restarted, 'DELETE', `/api/suppressions/${entry!.id}`);
    assert.equal(removed.error?.code, 'SUPPRESSION_NOT_FOUND');
    const again = await notify(restarted);
    assert.deepEqual(
      again.recipients[0]!.scheduled.map((d) => d.channel),
      ['webhook', 'push'],
    );
  });

  it('is honoured by a second process on the same PostgreSQL store', async () => {
    const schema = uniqueSchema('suppressions');
    cleanups.add({ close: () => dropSchema(schema) });
    const { peers, pushed } = await peersWithAGoneEndpoint();
    const first = await service(cleanups, peers, {
      databaseUrl: TEST_DATABASE_URL,
      databaseSchema: schema,
    });
    await learnGone(first, peers);

    const child = spawnCli(['serve'], {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: 'json',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: schema,
      NOTIFICATION_TOPICS: 'billing',
      ALLOW_PRIVATE_HOSTS: '127.0.0.1',
      VAPID_PUBLIC_KEY: VAPID.publicKey,
      VAPID_PRIVATE_KEY: VAPID.privateKey,
      VAPID_SUBJECT: 'mailto:ops@offload.test',
      WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 1).toString('base64')}`,
    });
    cleanups.add({
      close: async () => {
        child.process.kill('SIGTERM');
        await child.exited();
      },
    });
    const url = await listeningUrl(child.logs);
    const response = await fetch(`${url}/api/notifications/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        recipients: ['u5'],
        topic: 'billing',
        body: 'from the second process',
      }),
    });
    assert.equal(response.status, 200, child.stderr());
    const answer = (await response.json()) as RecipientsAnswer;
    assert.deepEqual(
      answer.recipients[0]!.skipped.map((s) => s.channel),
      ['push'],
    );
    assert.match(answer.recipients[0]!.skipped[0]!.reason, /suppressed since/);
    assert.equal(pushed.length, 1);
  });
});

describe('the suppression list and email', { timeout: 30_000 }, () => {
  it('adds an address refused for good with 5.1.1, and skips it next time; not one refused otherwise', async () => {
    const peers = await startPeers(cleanups, {
      smtp: {
        recipient: (address) =>
          address === 'gone@example.com'
            ? [550, '5.1.1 no such user here']
            : address === 'full@example.com'
              ? [552, '5.2.2 mailbox full']
              : null,
      },
    });
    const s = await service(cleanups, peers);
    for (const id of ['gone', 'full']) {
      await expect(200, s, 'PUT', `/api/recipients/${id}`, { email: `${id}@example.com` });
    }
    const first = await expect<RecipientsAnswer>(200, s, 'POST', '/api/notifications/notify', {
      recipients: ['gone', 'full'],
      body: 'hello',
    });
    for (const recipient of first.recipients) {
      const task = await finished(s.runtime, recipient.scheduled[0]!.task);
      assert.equal(task.state, 'failed');
    }
    const listed = await expect<{ suppressions: { address: string; reason: string }[] }>(
      200,
      s,
      'GET',
      '/api/suppressions',
    );
    assert.deepEqual(
      listed.suppressions.map((e) => e.address),
      ['gone@example.com'],
    );
    assert.match(listed.suppressions[0]!.reason, /5\.1\.1 no such user/);
    const next = await expect<RecipientsAnswer>(200, s, 'POST', '/api/notifications/notify', {
      recipients: ['gone', 'full'],
      body: 'hello again',
    });
    assert.deepEqual(
      next.recipients.map((r) => [r.id, r.scheduled.length, r.skipped.map((k) => k.channel)]),
      [
        ['gone', 0, ['email']],
        ['full', 1, []],
      ],
    );
  });
});
