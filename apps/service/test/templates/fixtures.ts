/** A service with every channel on, its peers on 127.0.0.1, and shorthands for the new routes. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_CHANNEL_SETTINGS,
  readChannelSettings,
} from '../../../../packages/notifications/src/index.js';
import {
  generateVapidKeys,
  type VapidKeys,
} from '../../../../packages/notifications/src/channels/web-push-crypto.js';
import type { Store } from '../../../../packages/offload/src/index.js';
import type { ServiceConfig } from '../../src/config.js';
import { testService, type TestService } from '../fixtures/service-harness.js';
import { startSmtpPeer, type SmtpPeer, type SmtpPeerOptions } from '../fixtures/smtp-peer.js';
import {
  startHttpPeer,
  type HttpPeer,
  type PeerHandler,
} from '../../../../packages/notifications/test/fixtures/http-peer.js';

export const PUBLIC_URL = 'https://notify.example.test';
export const VAPID: VapidKeys = generateVapidKeys();
const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

export interface Peers {
  smtp: SmtpPeer;
  http: HttpPeer;
}

/** Closes what the tests of a file opened, all of it, whatever fails. */
export class Cleanups {
  private readonly closes: (() => Promise<unknown>)[] = [];

  add<T extends { close(): Promise<unknown> }>(thing: T): T {
    this.closes.push(() => thing.close());
    return thing;
  }

  async run(): Promise<void> {
    const results = await Promise.allSettled(
      this.closes
        .splice(0)
        .reverse()
        .map((close) => close()),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length > 0)
      throw new AggregateError(failed.map((r) => (r as PromiseRejectedResult).reason));
  }
}

export async function startPeers(
  cleanups: Cleanups,
  options: { smtp?: SmtpPeerOptions; http?: PeerHandler } = {},
): Promise<Peers> {
  return {
    smtp: cleanups.add(await startSmtpPeer(options.smtp)),
    http: cleanups.add(await startHttpPeer(options.http)),
  };
}

/** The configuration of a service that sends on every channel to `peers`. */
export function channelConfig(
  peers: Peers,
  overrides: Partial<ServiceConfig> = {},
): Partial<ServiceConfig> {
  const settings = readChannelSettings(
    (name) =>
      (
        ({
          SMTP_URL: `smtp://127.0.0.1:${peers.smtp.port}`,
          EMAIL_FROM: 'Offload <noreply@offload.test>',
          WEBHOOK_SECRET,
        }) as Record<string, string>
      )[name],
  );
  return {
    topics: ['billing', 'security', 'news'],
    publicUrl: PUBLIC_URL,
    unsubscribeSecret: Buffer.from('u'.repeat(32)),
    channels: {
      ...DEFAULT_CHANNEL_SETTINGS,
      webhook: settings.webhook,
      email: settings.email,
      push: { vapid: VAPID, subject: 'mailto:ops@offload.test', ttl: 60 },
      allowPrivateHosts: ['127.0.0.1'],
      deliveryTimeout: 2000,
      deliveryAttempts: 2,
      deliveryBackoff: 5,
    },
    ...overrides,
  };
}

export async function service(
  cleanups: Cleanups,
  peers: Peers,
  overrides: Partial<ServiceConfig> = {},
  store?: Store,
): Promise<TestService> {
  return cleanups.add(await testService(channelConfig(peers, overrides), store));
}

export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T & { ok?: boolean; error?: { code: string; message: string } };
}

export async function call<T = Record<string, unknown>>(
  s: TestService,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: object,
): Promise<Answer<T>> {
  const response = await s.app.inject({ method, url, ...(payload ? { payload } : {}) });
  const body = (response.body === '' ? {} : response.json()) as Answer<T>['body'];
  return { status: response.statusCode, body };
}

/** Calls and checks that the answer is `status`, showing the body when it is not. */
export async function expect<T = Record<string, unknown>>(
  status: number,
  s: TestService,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  url: string,
  payload?: object,
): Promise<T & { error?: { code: string; message: string } }> {
  const answer = await call<T>(s, method, url, payload);
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  return answer.body;
}

/** The notify answer for recipients by id. */
export interface RecipientsAnswer {
  id: string;
  message: string;
  recipients: {
    id: string;
    scheduled: { channel: string; task: string }[];
    skipped: { channel: string | null; reason: string }[];
  }[];
}
