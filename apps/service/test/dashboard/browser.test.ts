/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), over a real socket
 * against the real service on loopback. Each test closes its browser; no dialog may ever open.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import {
  startHttpPeer,
  type HttpPeer,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';
import { finished } from '../../../../packages/offload/test/helpers.js';
import { ROOT, testService, type TestService } from '../fixtures/service-harness.js';

const CHROMIUM = '/usr/bin/chromium';
const SCRIPT = '<script>alert(1)</script>';
const IMG = '"><img src=x onerror=alert(1)>';
const KEY = 'dashboard-test-key-0123456789';
/** The README's screenshots are taken here: `OFFLOAD_SCREENSHOTS=1` writes them into docs/images. */
const IMAGES =
  process.env.OFFLOAD_SCREENSHOTS === '1'
    ? join(ROOT, 'docs/images')
    : mkdtempSync(join(tmpdir(), 'offload-screenshots-'));

if (process.env.OFFLOAD_SCREENSHOTS !== '1') after(() => rmSync(IMAGES, { recursive: true }));

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});

async function launch(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  closers.push(() => browser.close());
  return browser;
}

/**
 * A page that records every dialog (none may open) and every report of a Content Security Policy
 * violation (an inline script or style would be one).
 */
async function watchedPage(
  browser: Browser,
  javaScriptEnabled = true,
): Promise<{ page: Page; dialogs: string[]; violations: string[] }> {
  const context = await browser.newContext({
    javaScriptEnabled,
    viewport: { width: 1200, height: 900 },
  });
  const page = await context.newPage();
  const dialogs: string[] = [];
  const violations: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  page.setDefaultTimeout(10_000);
  return { page, dialogs, violations };
}

/** A service with the webhook channel on a local peer that fails while `failing` is true. */
async function serviceWithWebhook(
  apiKey?: string,
): Promise<{ s: TestService; url: string; peer: HttpPeer; state: { failing: boolean } }> {
  const state = { failing: true };
  const peer = await startHttpPeer((_request, response) => {
    if (state.failing)
      response.writeHead(500, { 'content-type': 'text/html' }).end(`${SCRIPT}${IMG}`);
    else response.writeHead(204).end();
  });
  closers.push(() => peer.close());
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const settings = readChannelSettings((name) => (name === 'WEBHOOK_SECRET' ? secret : undefined));
  const s = await testService({
    apiKey,
    logLevel: 'warn',
    channels: {
      ...DEFAULT_CHANNEL_SETTINGS,
      webhook: settings.webhook,
      allowPrivateHosts: ['127.0.0.1'],
      deliveryTimeout: 2000,
      deliveryAttempts: 1,
      deliveryBackoff: 5,
    },
  });
  closers.push(() => s.close());
  const url = await s.listen();
  return { s, url, peer, state };
}

async function notify(s: TestService, body: object | undefined, apiKey?: string): Promise<string> {
  const response = await s.app.inject({
    method: 'POST',
    url: '/api/notifications/notify',
    ...(body === undefined ? {} : { payload: body }),
    headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ id: string }>().id;
}

describe(
  'the dashboard in a browser',
  { timeout: 60_000, skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` },
  () => {
    it('shows counts, a failed task as text, retries it live, and pauses and resumes a name', async () => {
      const { s, url, peer, state } = await serviceWithWebhook();
      const failed = await notify(s, {
        channel: 'webhook',
        to: `${peer.url}/hook?q=${encodeURIComponent(IMG)}`,
        subject: SCRIPT,
        body: IMG,
      });
      const demos = [await notify(s, undefined), await notify(s, undefined)];
      assert.equal((await finished(s.runtime, failed)).state, 'failed');
      for (const id of demos) assert.equal((await finished(s.runtime, id)).state, 'succeeded');

      const browser = await launch();
      const { page, dialogs, violations } = await watchedPage(browser);
      await page.goto(`${url}/dashboard`);
      await page.getByRole('heading', { name: 'Overview' }).waitFor();
      assert.equal(await page.locator('.cards [data-count="failed"]').textContent(), '1');
      assert.equal(await page.locator('.cards [data-count="succeeded"]').textContent(), '2');
      await page.screenshot({ path: join(IMAGES, 'dashboard-overview.png'), fullPage: true });

      await page.goto(`${url}/dashboard/tasks/${failed}`);
      const payload = await page.locator('pre.json').first().textContent();
      assert.ok(payload?.includes(SCRIPT) && payload.includes(IMG), 'the payload shows as text');
      assert.equal(await page.locator('img').count(), 0);
      assert.equal(await page.locator('[data-field="state"]').textContent(), 'failed');
      await page.locator('ol.errors details summary').first().click();
      await page.screenshot({ path: join(IMAGES, 'dashboard-task.png'), fullPage: true });

      // Retry: sent by the script, and the state changes without a reload.
      state.failing = false;
      await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 1));
      await page.getByRole('button', { name: 'Retry' }).click();
      await page.locator('[data-field="state"]', { hasText: 'succeeded' }).waitFor();
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
        1,
      );
      assert.equal((await s.runtime.get(failed))!.state, 'succeeded');

      // Pause and resume a name, from the overview's table.
      await page.goto(`${url}/dashboard`);
      const row = page.getByRole('row', { name: /notifications\.webhook/ });
      await row.getByRole('button', { name: 'Pause' }).click();
      await row.getByRole('button', { name: 'Resume' }).waitFor();
      assert.deepEqual(
        (await s.runtime.paused()).map((p) => p.name),
        ['notifications.webhook'],
      );
      await row.getByRole('button', { name: 'Resume' }).click();
      await row.getByRole('button', { name: 'Pause' }).waitFor();
      assert.deepEqual(await s.runtime.paused(), []);

      // The other pages, with hostile data on them too.
      for (const path of [
        '/dashboard/tasks',
        '/dashboard/notifications?channel=webhook',
        '/dashboard/schedules',
      ]) {
        await page.goto(`${url}${path}`);
        assert.equal(await page.locator('img').count(), 0, path);
      }
      assert.deepEqual(dialogs, []);
      assert.deepEqual(violations, []);
    });

    it('works without JavaScript: a Retry form posts and comes back', async () => {
      const { s, url, peer } = await serviceWithWebhook();
      const failed = await notify(s, {
        channel: 'webhook',
        to: `${peer.url}/hook`,
        subject: SCRIPT,
        body: IMG,
      });
      assert.equal((await finished(s.runtime, failed)).state, 'failed');
      const browser = await launch();
      const { page, dialogs } = await watchedPage(browser, false);
      await page.goto(`${url}/dashboard/tasks/${failed}`);
      await page.getByRole('button', { name: 'Retry' }).click();
      await page.waitForURL(/notice=retried/);
      assert.match((await page.locator('#notice').textContent()) ?? '', /queued again/);
      await finished(s.runtime, failed);
      assert.deepEqual(dialogs, []);
    });

    it('asks for the API key on a login page when one is set', async () => {
      const { s, url } = await serviceWithWebhook(KEY);
      await notify(s, undefined, KEY);
      const browser = await launch();
      const { page, dialogs } = await watchedPage(browser);
      await page.goto(`${url}/dashboard/tasks`);
      await page.waitForURL(/\/dashboard\/login\?next=/);
      await page.getByLabel('API key').fill('not-the-key-at-all');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').waitFor();
      await page.getByLabel('API key').fill(KEY);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(`${url}/dashboard/tasks`);
      await page.getByRole('heading', { name: 'Tasks' }).waitFor();
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'offload_dashboard');
      assert.ok(session?.httpOnly && session.sameSite === 'Strict');
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL(/\/dashboard\/login/);
      await page.goto(`${url}/dashboard`);
      await page.waitForURL(/\/dashboard\/login/);
      assert.deepEqual(dialogs, []);
    });
  },
);
