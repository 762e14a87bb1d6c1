import { domainToASCII } from 'node:url';
import MailComposer from 'nodemailer/lib/mail-composer';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { OutgoingDelivery, SendContext, Sender } from '../delivery.js';
import {
  DeliveryRejectedError,
  DeliveryTimeoutError,
  RecipientGoneError,
} from '../delivery-errors.js';

/** One SMTP server from `SMTP_URL`. Its credentials stay here: `name` is what is shown. */
export interface SmtpProvider {
  /** `smtp-1`, `smtp-2`, … in the order of `SMTP_URL`. */
  name: string;
  host: string;
  port: number;
  /** `smtps://`: TLS from the start. `smtp://` upgrades with STARTTLS when the server offers it. */
  secure: boolean;
  auth: { user: string; pass: string } | null;
}

/**
 * Reads `SMTP_URL`: one or more `smtp://[user:pass@]host[:port]` or `smtps://…` URLs separated by
 * spaces or commas, tried in that order. Returns a message saying what is wrong instead; the
 * message never repeats a password.
 */
export function parseSmtpUrls(text: string): SmtpProvider[] | string {
  const providers: SmtpProvider[] = [];
  for (const [i, part] of text
    .split(/[\s,]+/)
    .filter((p) => p !== '')
    .entries()) {
    let url: URL;
    try {
      url = new URL(part);
    } catch {
      return `server ${i + 1} is not a URL; write smtp://user:password@host:587 or smtps://…:465`;
    }
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
      return `server ${i + 1} must start with smtp:// or smtps://, got ${url.protocol}//`;
    }
    if (url.hostname === '') return `server ${i + 1} has no host name`;
    const secure = url.protocol === 'smtps:';
    providers.push({
      name: `smtp-${i + 1}`,
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
      secure,
      auth:
        url.username === ''
          ? null
          : { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) },
    });
  }
  return providers.length > 0 ? providers : 'give at least one smtp:// or smtps:// URL';
}

export interface EmailSenderOptions {
  providers: readonly SmtpProvider[];
  /** `EMAIL_FROM`: `ops@example.com` or `Example <ops@example.com>`. */
  from: string;
  /** Timeout of the whole exchange with one server, in ms. */
  timeout: number;
  /**
   * The one-click unsubscribe link of an email to stored recipient `recipient` about `topic`
   * (RFC 8058), or null when the service has none (see unsubscribe.ts).
   */
  unsubscribe?: ((recipient: string, topic: string) => string) | null;
}

type SmtpError = Error & { code?: string; responseCode?: number; response?: string };

/**
 * Sends each delivery as one message to one recipient over SMTP: plain text, with an HTML
 * alternative when given. A permanent rejection of the recipient or the message (5xx) fails
 * without retry; a temporary one (4xx), a refused login or a connection failure is retried, and
 * after the attempts on one server the next one is tried.
 */
export class EmailSender implements Sender {
  readonly channel = 'email';
  readonly providers: readonly string[];

  constructor(private readonly options: EmailSenderOptions) {
    this.providers = options.providers.map((p) => p.name);
  }

  /**
   * The first server's key: a delivery's group is chosen when it is stored, before any attempt
   * fails over, so attempts on the next servers count against the first one's limit too.
   */
  providerKey(): string {
    return `smtp:${this.providers[0]}`;
  }

  suppressionAddress(delivery: OutgoingDelivery): string {
    const to = String(delivery.to);
    return (envelopeAddress(to) ?? to).toLowerCase();
  }

  async send(
    delivery: OutgoingDelivery,
    { provider: index, signal }: SendContext,
  ): Promise<string> {
    const provider = this.options.providers[index]!;
    const unsubscribe =
      delivery.recipient !== undefined && delivery.topic !== undefined && this.options.unsubscribe
        ? this.options.unsubscribe(delivery.recipient, delivery.topic)
        : null;
    const message = await new MailComposer({
      from: this.options.from,
      to: String(delivery.to),
      subject: delivery.subject ?? '',
      text: delivery.body ?? '',
      ...(delivery.html === null ? {} : { html: delivery.html }),
      messageId: `<${delivery.notification}.${delivery.index}@offload>`,
      headers: {
        'x-offload-notification': delivery.notification,
        // RFC 8058: one-click unsubscribe, by a POST to the signed link.
        ...(unsubscribe === null
          ? {}
          : {
              'list-unsubscribe': `<${unsubscribe}>`,
              'list-unsubscribe-post': 'List-Unsubscribe=One-Click',
            }),
      },
    })
      .compile()
      .build();
    const to = String(delivery.to);
    const envelope = { from: bareAddress(this.options.from), to: [envelopeAddress(to) ?? to] };
    return this.exchange(provider, envelope, message, signal);
  }

  /** One connection: connect, log in, send, quit. Closed at once on timeout or abort. */
  private exchange(
    provider: SmtpProvider,
    envelope: { from: string; to: string[] },
    message: Buffer,
    signal: AbortSignal,
  ): Promise<string> {
    signal.throwIfAborted();
    const { timeout } = this.options;
    const connection = new SMTPConnection({
      host: provider.host,
      port: provider.port,
      secure: provider.secure,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
      dnsTimeout: timeout,
      logger: false,
    });
    const where = `${provider.name} (${provider.host}:${provider.port})`;
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, response?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (error === null) {
          connection.quit();
          resolve(response ?? '');
        } else {
          connection.close();
          reject(error);
        }
      };
      const timer = setTimeout(() => finish(new DeliveryTimeoutError(timeout, where)), timeout);
      const onAbort = () => finish(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      connection.on('error', (error: SmtpError) => finish(classify(error, where, timeout)));

      const failed = (error: SmtpError | null | undefined) => {
        if (error) finish(classify(error, where, timeout));
        return Boolean(error);
      };
      connection.connect((error) => {
        if (failed(error)) return;
        const sendMessage = () =>
          connection.send(envelope, message, (sendError, info) => {
            if (failed(sendError)) return;
            finish(null, `${where}: ${info.response ?? 'accepted'}`);
          });
        if (provider.auth === null) return sendMessage();
        connection.login(provider.auth, (loginError) => {
          if (!failed(loginError)) sendMessage();
        });
      });
    });
  }
}

/** What an SMTP failure means for the attempt. */
function classify(error: SmtpError, where: string, timeout: number): Error {
  if (error.code === 'ETIMEDOUT') return new DeliveryTimeoutError(timeout, where);
  const code = error.responseCode;
  const permanent =
    typeof code === 'number' &&
    code >= 500 &&
    (error.code === 'EENVELOPE' || error.code === 'EMESSAGE');
  const message = `${where}: ${error.message}`;
  // 5.1.x (RFC 3463): the address itself is bad (no such mailbox, no such domain): it is gone.
  if (
    permanent &&
    error.code === 'EENVELOPE' &&
    /\b5\.1\.\d{1,3}\b/.test(error.response ?? error.message)
  ) {
    return new RecipientGoneError(`${message}: the address is refused for good`);
  }
  return permanent ? new DeliveryRejectedError(message) : new Error(message, { cause: error });
}

/** Any character but space, control characters and those that separate addresses or quote. */
const LOCAL_PART = /^[^\s\p{Cc}@<>()[\]\\,;:"]+$/u;
const ASCII_DOMAIN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;

/**
 * One email address as SMTP's envelope takes it, or null when `address` is not one. An
 * internationalized domain becomes its ASCII form (`ada@bücher.example` →
 * `ada@xn--bcher-kva.example`), which every server takes. The local part stays as written: a
 * non-ASCII one needs a server that offers SMTPUTF8, and one that does not refuses the recipient
 * with a 5xx that the delivery records.
 */
export function envelopeAddress(address: string): string | null {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at);
  if (at < 1 || Buffer.byteLength(local) > 64 || !LOCAL_PART.test(local)) return null;
  const domain = address.slice(at + 1);
  const ascii = /[^\p{ASCII}]/u.test(domain) ? domainToASCII(domain) : domain;
  return ASCII_DOMAIN.test(ascii) ? `${local}@${ascii}` : null;
}

/** `Name <a@b>` → `a@b`. */
function bareAddress(from: string): string {
  return /<([^>]+)>\s*$/.exec(from)?.[1] ?? from.trim();
}
