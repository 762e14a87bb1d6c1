/**
 * The inbox on PostgreSQL, across real processes: two services on one schema, one of them running
 * no tasks, so that a message reaches its streams only through LISTEN/NOTIFY.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InboxTokens } from '../../../../packages/notifications/src/index.js';
import {
  dropSchema,
  TEST_DATABASE_URL,
  uniqueSchema,
} from '../../../../packages/offload/test/pg-helpers.js';
import { listeningUrl, spawnCli, type Child } from '../fixtures/service-harness.js';
import { openStream, type SseStream } from './sse-client.js';

const SECRET = 'inbox-postgres-secret-0123456789abcdef';
const tokens = new InboxTokens(SECRET);

describe('inbox on PostgreSQL, two processes', () => {
  const schema = uniqueSchema('inbox');
  const children: Child[] = [];
  const streams: SseStream[] = [];
  after(async () => {
    for (const stream of streams) stream.close();
    for (const child of children) child.process.kill('SIGTERM');
    await Promise.all(children.map((child) => child.exited(15_000).catch(() => undefined)));
    await dropSchema(schema);
  });

  function start(args: string[]): Child {
    const child = spawnCli(['serve', ...args], {
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: TEST_DATABASE_URL,
      DATABASE_SCHEMA: schema,
      INBOX_SECRET: SECRET,
      INBOX_HEARTBEAT: '1',
      LOG_FORMAT: 'json',
      SHUTDOWN_GRACE: '1',
    });
    children.push(child);
    return child;
  }

  it('sends a message notified through process B to a client on process A, and resumes on B', async () => {
    // A runs no tasks: the delivery runs on B, and A hears of it only from PostgreSQL.
    const a = start(['--no-runner']);
    const b = start([]);
    const [urlA, urlB] = await Promise.all([listeningUrl(a.logs), listeningUrl(b.logs)]);
    const token = tokens.issue('ada');
    const onA = await openStream(`${urlA}/api/recipients/ada/inbox/stream?access_token=${token}`);
    streams.push(onA);
    assert.equal(onA.status, 200);
    await onA.waitForComments(1, 5000);

    const notify = async (subject: string) => {
      const response = await fetch(`${urlB}/api/notifications/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'inbox', to: 'ada', subject }),
      });
      assert.equal(response.status, 200);
    };
    await notify('one');
    await notify('two');
    const events = await onA.waitForEvents(2, 10_000);
    assert.deepEqual(
      events.map((e) => [e.id, (JSON.parse(e.data) as { subject: string }).subject]),
      [
        ['1', 'one'],
        ['2', 'two'],
      ],
    );

    // A client that leaves A and comes back on B with its last id gets the rest, once.
    onA.close();
    await notify('three');
    const onB = await openStream(`${urlB}/api/recipients/ada/inbox/stream?access_token=${token}`, {
      'last-event-id': '2',
    });
    streams.push(onB);
    await notify('four');
    const rest = await onB.waitForEvents(2, 10_000);
    assert.deepEqual(
      rest.map((e) => e.id),
      ['3', '4'],
    );
    const list = await fetch(`${urlA}/api/recipients/ada/inbox`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = (await list.json()) as { unread: number; messages: unknown[] };
    assert.deepEqual([body.unread, body.messages.length], [4, 4]);

    // SIGTERM ends the open streams (their clients reconnect elsewhere) and the process exits.
    b.process.kill('SIGTERM');
    await onB.ended;
    assert.equal(await b.exited(10_000), 0);
  });
});
