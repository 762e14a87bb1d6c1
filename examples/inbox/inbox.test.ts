/**
 * The inbox example in a real browser (Debian's Chromium through playwright-core), over real
 * sockets: the page, served by the example host app, lists the inbox, shows new messages through
 * EventSource, marks them read, and loses none when its stream is cut and reconnects.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { testService, type TestService } from '../../apps/service/test/fixtures/service-harness.js';
import { createInboxExample } from './app.js';

const CHROMIUM = '/usr/bin/chromium';
const API_KEY = 'inbox-example-api-key-0123456789';
const SECRET = 'inbox-example-secret-0123456789abcdef';

describe(
  'examples/inbox in Chromium',
  { timeout: 60_000, skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` },
  () => {
    let service: TestService;
    let serviceUrl: string;
    let exampleUrl: string;
    let example: ReturnType<typeof createInboxExample>;
    const sockets = new Set<Socket>();
    let browser: Browser;
    let page: Page;
    let sent = 0;

    before(async () => {
      service = await testService({
        apiKey: API_KEY,
        logLevel: 'info',
        inbox: { secret: SECRET, heartbeat: 1000 },
      });
      serviceUrl = await service.listen();
      example = createInboxExample({ serviceUrl, secret: SECRET, user: 'ada' });
      example.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      example.listen(0, '127.0.0.1');
      await once(example, 'listening');
      exampleUrl = `http://127.0.0.1:${(example.address() as AddressInfo).port}`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      page = await browser.newPage();
      page.setDefaultTimeout(10_000);
    });

    after(async () => {
      await browser?.close();
      example?.closeAllConnections();
      example?.close();
      await service?.close();
    });

    /** Sends the user a message on the inbox channel, as the app's backend would. */
    async function notify(subject: string): Promise<void> {
      sent += 1;
      const response = await fetch(`${serviceUrl}/api/notifications/notify`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'inbox', to: 'ada', subject, body: `about ${subject}` }),
      });
      assert.equal(response.status, 200);
    }

    const unread = () => page.locator('#unread').getAttribute('data-count');
    const shownIds = () =>
      page.$$eval('#messages li', (items) => items.map((item) => Number(item.dataset.id)));

    it('shows the inbox and its unread count, and a new message within 1 s of the notify', async () => {
      await notify('before the page');
      await waitForStored(1);
      await page.goto(exampleUrl);
      await page.waitForSelector('#message-1');
      assert.equal(await unread(), '1');
      await page.waitForSelector('#status[data-state="open"]');

      const started = performance.now();
      await notify('live');
      await page.waitForSelector('#message-2', { timeout: 1000 });
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `shown after ${elapsed} ms`);
      assert.equal(await page.locator('#message-2 strong').textContent(), 'live');
      assert.equal(await unread(), '2');
    });

    it('marks a message read, in the page and in the store', async () => {
      await page.click('#message-2 button');
      await page.waitForSelector('#message-2.read');
      assert.equal(await unread(), '1');
      const list = await fetch(`${serviceUrl}/api/recipients/ada/inbox`, {
        headers: { authorization: `Bearer ${API_KEY}` },
      });
      const body = (await list.json()) as {
        unread: number;
        messages: { id: number; readAt: string | null }[];
      };
      assert.equal(body.unread, 1);
      assert.equal(typeof body.messages.find((m) => m.id === 2)?.readAt, 'string');
    });

    it('loses no message, and shows none twice, when the stream is cut and reconnects', async () => {
      await notify('just before the cut');
      await page.waitForSelector('#message-3');
      // Cut every connection of the page, its stream among them.
      for (const socket of sockets) socket.destroy();
      await page.waitForSelector('#status[data-state="reconnecting"]');
      await notify('while away 1');
      await notify('while away 2');
      await page.waitForSelector('#status[data-state="open"]');
      await notify('after the reconnect');
      await page.waitForSelector(`#message-${sent}`);
      const ids = await shownIds();
      assert.deepEqual(
        [...ids].sort((a, b) => a - b),
        Array.from({ length: sent }, (_, i) => i + 1),
        'each message once',
      );
      assert.equal(await unread(), String(sent - 1));
      // The stream itself sent each message after the first listing once, in order.
      const streamed = await page.evaluate(
        () => (globalThis as unknown as { inboxEventIds: number[] }).inboxEventIds,
      );
      assert.deepEqual(
        streamed,
        Array.from({ length: sent - 1 }, (_, i) => i + 2),
      );
    });

    async function waitForStored(count: number): Promise<void> {
      for (let i = 0; i < 500; i++) {
        const response = await fetch(`${serviceUrl}/api/recipients/ada/inbox`, {
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        const body = (await response.json()) as { messages: unknown[] };
        if (body.messages.length >= count) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.fail(`the inbox did not reach ${count} messages`);
    }
  },
);
