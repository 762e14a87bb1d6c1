import { envelopeAddress } from './channels/email.js';
import type { NotificationContent } from './content.js';
import type { ChannelName, Recipient } from './delivery.js';
import type { DeliveryHours } from './delivery-hours.js';
import { checkPushSize, type NotifyRequest, type RequestRules } from './notification.js';
import { addressesOf, type RecipientBook, type RecipientProfile } from './recipient-book.js';
import { describe, suppressionId, type Suppressions } from './suppressions.js';
import type { Templates } from './templates.js';

/** One delivery a notification makes: to an address on a channel, for a stored recipient or not. */
export interface PlannedDelivery {
  channel: ChannelName;
  to: Recipient;
  /** The stored recipient it goes to, and the topic (for preferences and unsubscribe links). */
  recipient?: string;
  topic?: string;
  /** The stored recipient's time zone, quiet hours and send window, when it has any. */
  hours?: DeliveryHours;
}

/** What became of one recipient of a notification to recipients by id. */
export interface RecipientReport {
  id: string;
  /** The deliveries made for it: indexes into `deliveries`. */
  scheduled: { channel: ChannelName; index: number }[];
  /** What was not sent to it, and why. A recipient that is not stored has one, without channel. */
  skipped: { channel: ChannelName | null; reason: string }[];
}

/**
 * A notify request with everything read that it depends on: its template rendered, its
 * recipients' addresses and preferences looked up, suppressed addresses left out. Made when the
 * request is accepted; `Notifications.plan` turns it into tasks.
 */
export interface PreparedNotification {
  request: NotifyRequest;
  /** The demo notification: no content, no deliveries. */
  demo: boolean;
  content: NotificationContent;
  deliveries: PlannedDelivery[];
  /** Per recipient, for a notification to recipients by id; null otherwise. */
  report: RecipientReport[] | null;
}

export interface PrepareContext {
  rules: RequestRules;
  templates: Templates;
  recipients: RecipientBook;
  suppressions: Suppressions;
}

/** Reads what `request` depends on; a NotificationError (a 400) when it cannot be sent. */
export async function prepareNotification(
  request: NotifyRequest,
  context: PrepareContext,
): Promise<PreparedNotification> {
  if (request.kind === 'demo') {
    const content = { subject: null, body: null, html: null, data: null };
    return { request, demo: true, content, deliveries: [], report: null };
  }
  const { template, subject, body, html, data } = request.notification;
  // Rendered once, whatever the number of recipients; the text is stored once (content.ts).
  let content: NotificationContent = { subject, body, html, data };
  if (template !== null) {
    const rendered = await context.templates.render(template, data);
    content = {
      subject: rendered.subject,
      body: rendered.body,
      html: rendered.html,
      data,
      ...(rendered.title === null ? {} : { title: rendered.title }),
    };
  }
  if (request.kind === 'notification') {
    const { channel, to } = request.notification;
    if (channel === 'push' && template !== null) checkPushSize(content);
    if (channel !== 'email') content = { ...content, html: null };
    return {
      request,
      demo: false,
      content,
      deliveries: to.map((address) => ({ channel, to: address })),
      report: null,
    };
  }
  const { recipients: ids, topic } = request.notification;
  const stored = await context.recipients.find(ids);
  const report: RecipientReport[] = [];
  const candidates: (PlannedDelivery & { report: RecipientReport })[] = [];
  for (const id of ids) {
    const entry: RecipientReport = { id, scheduled: [], skipped: [] };
    report.push(entry);
    const recipient = stored.get(id);
    if (recipient === undefined) {
      entry.skipped.push({
        channel: null,
        reason: `no recipient ${id} is stored; add it with PUT /api/recipients/${id}`,
      });
      continue;
    }
    const addresses = addressesOf(recipient);
    if (addresses.length === 0) {
      entry.skipped.push({ channel: null, reason: 'the recipient has no address on any channel' });
    }
    for (const { channel, to } of addresses) {
      const unavailable = context.rules.unavailable(channel);
      if (unavailable !== null) {
        entry.skipped.push({ channel, reason: unavailable });
      } else if (topic !== null && recipient.preferences[topic]?.[channel] === false) {
        entry.skipped.push({ channel, reason: `turned off for the topic ${topic}` });
      } else {
        candidates.push({
          channel,
          to,
          recipient: id,
          ...(topic === null ? {} : { topic }),
          ...(hasHours(recipient) ? { hours: hoursOf(recipient) } : {}),
          report: entry,
        });
      }
    }
  }
  const addresses = candidates.map(({ channel, to }) => ({
    channel,
    address: address(channel, to),
  }));
  const suppressed = await context.suppressions.find(addresses);
  const deliveries: PlannedDelivery[] = [];
  candidates.forEach(({ report: entry, ...delivery }, i) => {
    const { channel, address: key } = addresses[i]!;
    const found = suppressed.get(suppressionId(channel, key));
    if (found !== undefined) {
      entry.skipped.push({ channel, reason: `the address is ${describe(found)}` });
      return;
    }
    entry.scheduled.push({ channel, index: deliveries.length });
    deliveries.push(delivery);
  });
  if (deliveries.some((d) => d.channel === 'push')) checkPushSize(content);
  if (!deliveries.some((d) => d.channel === 'email')) content = { ...content, html: null };
  return { request, demo: false, content, deliveries, report };
}

/** The address the suppression list keeps for `to` on `channel` (as the senders give it). */
export function address(channel: ChannelName, to: Recipient): string {
  if (channel === 'push') return (to as { endpoint: string }).endpoint;
  if (channel === 'email') return (envelopeAddress(String(to)) ?? String(to)).toLowerCase();
  return String(to);
}

function hasHours(recipient: RecipientProfile): boolean {
  return recipient.timezone !== null && (recipient.quietHours ?? recipient.sendWindow) != null;
}

function hoursOf(recipient: RecipientProfile): DeliveryHours {
  return {
    timezone: recipient.timezone,
    quietHours: recipient.quietHours ?? null,
    sendWindow: recipient.sendWindow ?? null,
  };
}
