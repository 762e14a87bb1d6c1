import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import {
  UNSUBSCRIBE_PATH,
  type UnsubscribeLinks,
  type Notifications,
} from '@offload/notifications';
import { ApiError } from '../errors.js';

export interface UnsubscribeRoutesOptions {
  notifications: Notifications;
  links: UnsubscribeLinks;
}

/** Mail clients post the one-click body as a form; whatever they send, only this much is read. */
const BODY_LIMIT = 4096;

/**
 * One-click unsubscribe (RFC 8058), outside `/api`: the signed token in the link is the
 * credential, no API key. `POST /unsubscribe?token=…` turns the topic off for the recipient's
 * email; `GET` only shows a page with a button that posts, since mail scanners follow links.
 */
export const unsubscribeRoutes: FastifyPluginCallback<UnsubscribeRoutesOptions> = (
  app,
  { notifications, links },
  done,
) => {
  // Mail clients send `List-Unsubscribe=One-Click` as a form (urlencoded or multipart); the body
  // says nothing the token does not, so any type is taken and none is read into anything.
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
    (_request, _body, finish) => finish(null, undefined),
  );

  app.get(UNSUBSCRIBE_PATH, async (request, reply) => {
    const token = readToken(request);
    const { topic } = links.verify(token, Date.now());
    return page(
      reply,
      'Unsubscribe',
      `<p>Stop receiving email about <b>${escape(topic)}</b>?</p>
<form method="post" action="${UNSUBSCRIBE_PATH}?token=${escape(encodeURIComponent(token))}">
<button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button>
</form>`,
    );
  });

  app.post(UNSUBSCRIBE_PATH, async (request, reply) => {
    const { recipient, topic } = links.verify(readToken(request), Date.now());
    await notifications.recipients.unsubscribe(recipient, topic, new Date());
    request.log.info({ recipient, topic }, 'unsubscribed by one-click link');
    return page(
      reply,
      'Unsubscribed',
      `<p>You will no longer receive email about <b>${escape(topic)}</b>.</p>`,
    );
  });
  done();
};

function readToken(request: FastifyRequest): string {
  const { token, ...rest } = request.query as Record<string, unknown>;
  if (typeof token !== 'string' || Object.keys(rest).length > 0) {
    throw new ApiError(
      'INVALID_UNSUBSCRIBE_TOKEN',
      'this unsubscribe link is incomplete: use the whole link from the email',
    );
  }
  return token;
}

function page(reply: FastifyReply, title: string, body: string): FastifyReply {
  return reply
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; form-action 'self'")
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head><body><h1>${title}</h1>${body}</body></html>\n`,
    );
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
