import type { OutgoingDelivery, SendContext, Sender } from '../delivery.js';

/** Delivers a notification as one structured log line: for trying the service out, and for tests. */
export class LogSender implements Sender {
  readonly channel = 'log';
  readonly providers = ['log'];

  async send(
    { to, subject, body, data }: OutgoingDelivery,
    { logger }: SendContext,
  ): Promise<string> {
    logger.info(
      { channel: 'log', to, subject, body, data },
      'notification delivered on the log channel',
    );
    return 'logged';
  }
}
