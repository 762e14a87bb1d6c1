import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import {
  INBOX_TOKEN,
  MAX_INBOX_PAGE,
  type InboxPage,
  type InboxTokens,
  type Notifications,
} from '@offload/notifications';
import { ApiError } from '../errors.js';
import { recipientId } from './recipients.js';
import type { InboxStreams } from '../inbox-streams.js';

export interface InboxRoutesOptions {
  notifications: Notifications;
  streams: InboxStreams;
  /** The API key (`OFFLOAD_API_KEY`), which opens every inbox; undefined: the API is open. */
  apiKey: string | undefined;
  /** Checks recipient tokens (`INBOX_SECRET`); null: this service takes none. */
  tokens: InboxTokens | null;
}

/** The largest message id a request may name. */
const MAX_ID = Number.MAX_SAFE_INTEGER;

/**
 * A recipient's in-app inbox (see docs/inbox.md): `GET /recipients/:id/inbox` lists it, newest
 * first, with the unread count; `POST …/inbox/:messageId/read` and `…/inbox/read-all` mark
 * messages read; `GET …/inbox/stream` sends new messages as server-sent events. Each takes the
 * API key, or the recipient's own token (Authorization: Bearer, or `?access_token=` where a
 * browser cannot set headers, as with EventSource).
 */
export const inboxRoutes: FastifyPluginCallback<InboxRoutesOptions> = (app, options, done) => {
  const { notifications, streams } = options;
  const { inbox } = notifications;
  app.addHook('onRequest', (request, _reply, next) => {
    try {
      authorize(request, options);
      next();
    } catch (error) {
      next(error as Error);
    }
  });

  app.get('/recipients/:id/inbox', async (request): Promise<{ ok: true } & InboxPage> => {
    const query = readQuery(request, ['limit', 'before']);
    const limit = query.limit === undefined ? 20 : whole('limit', query.limit, 1, MAX_INBOX_PAGE);
    const before = query.before === undefined ? undefined : cursor(query.before);
    const page = await inbox.list(recipientId(request), {
      limit,
      ...(before === undefined ? {} : { before }),
    });
    return { ok: true, ...page };
  });

  app.post('/recipients/:id/inbox/read-all', async (request) => {
    const query = readQuery(request, ['through']);
    const through = query.through === undefined ? null : whole('through', query.through, 1, MAX_ID);
    const { marked, unread } = await inbox.markRead(recipientId(request), { through });
    return { ok: true, marked, unread };
  });

  app.post('/recipients/:id/inbox/:messageId/read', async (request) => {
    readQuery(request, []);
    const recipient = recipientId(request);
    const { messageId } = request.params as { messageId: string };
    if (!/^\d{1,16}$/.test(messageId) || Number(messageId) < 1) {
      throw new ApiError(
        'INVALID_MESSAGE_ID',
        `${JSON.stringify(messageId.slice(0, 100))} is not a message id: use the "id" of a message in the inbox, a whole number from 1`,
      );
    }
    const id = Number(messageId);
    const [found] = await inbox.after(recipient, id - 1, 1);
    if (found?.id !== id) {
      throw new ApiError(
        'MESSAGE_NOT_FOUND',
        `the inbox of ${recipient} has no message ${id}; list it with GET /api/recipients/${recipient}/inbox`,
      );
    }
    const { marked, unread } = await inbox.markRead(recipient, { id });
    return { ok: true, marked, unread };
  });

  app.get('/recipients/:id/inbox/stream', async (request, reply) => {
    const query = readQuery(request, ['after']);
    const recipient = recipientId(request);
    const header = request.headers['last-event-id'];
    let after: number | undefined;
    if (header !== undefined) {
      if (typeof header !== 'string' || !/^\d{1,16}$/.test(header)) {
        throw new ApiError(
          'INVALID_LAST_EVENT_ID',
          'Last-Event-ID must be the id of the last event this stream sent (a whole number); leave it out to start from now',
        );
      }
      after = Number(header);
    } else if (query.after !== undefined) {
      after = whole('after', query.after, 0, MAX_ID);
    }
    const refusal = streams.reserve(recipient);
    if (refusal === 'process') {
      throw new ApiError(
        'INBOX_STREAMS_FULL',
        `this process holds ${streams.settings.maxStreams} inbox streams, its most (INBOX_MAX_STREAMS); reconnect later, or to another process`,
      );
    }
    if (refusal === 'recipient') {
      throw new ApiError(
        'TOO_MANY_INBOX_STREAMS',
        `the inbox of ${recipient} has ${streams.settings.maxStreamsPerRecipient} open streams on this process, its most (INBOX_MAX_STREAMS_PER_RECIPIENT); close one (e.g. another tab) before opening more`,
      );
    }
    let opened = false;
    try {
      await streams.ready();
      // An id past the newest (a client of an inbox since emptied) would hold back what comes.
      const latest = await inbox.latest(recipient);
      const start = after === undefined || after > latest ? latest : after;
      reply.hijack();
      streams.open(recipient, start, reply.raw);
      opened = true;
    } finally {
      if (!opened) streams.release(recipient);
    }
  });
  done();
};

/** Whether the route of `request` is one of the inbox's, which take recipient tokens. */
export function isInboxRoute(url: string | undefined): boolean {
  return url !== undefined && /^\/api\/recipients\/:id\/inbox(\/|$)/.test(url);
}

/**
 * Lets the request through with the API key, with the token of the recipient it names, or with
 * nothing when the API is open (no key) and none is given. A token given is always checked.
 */
function authorize(
  request: FastifyRequest,
  { apiKey, tokens }: Pick<InboxRoutesOptions, 'apiKey' | 'tokens'>,
): void {
  const header = request.headers.authorization;
  let bearer: string | undefined;
  if (header !== undefined) {
    bearer = /^Bearer +(\S+)$/i.exec(header)?.[1];
    if (bearer === undefined) {
      throw new ApiError(
        'INVALID_INBOX_TOKEN',
        'the Authorization header must be Bearer <OFFLOAD_API_KEY> or Bearer <recipient token>',
      );
    }
    if (apiKey !== undefined && sameSecret(bearer, apiKey)) return;
  }
  const query = request.query as Record<string, unknown> | undefined;
  const given = query?.access_token;
  if (given !== undefined && bearer !== undefined) {
    throw new ApiError(
      'INVALID_INBOX_TOKEN',
      'give the recipient token once: in the Authorization header or as access_token, not both',
    );
  }
  const token = bearer ?? given;
  if (token === undefined) {
    if (apiKey === undefined) return;
    throw new ApiError(
      'UNAUTHORIZED',
      'the inbox needs Authorization: Bearer <OFFLOAD_API_KEY>, or the recipient token issued by your app (Authorization: Bearer <token>, or ?access_token=<token> for EventSource)',
    );
  }
  if (typeof token !== 'string' || !INBOX_TOKEN.test(token)) {
    throw new ApiError(
      'INVALID_INBOX_TOKEN',
      `the ${bearer === undefined ? 'access_token' : 'bearer token'} is not a recipient token (43 characters of base64url, the HMAC-SHA-256 of the recipient id under INBOX_SECRET); ask your app's backend for one`,
    );
  }
  if (tokens === null) {
    throw new ApiError(
      'INVALID_INBOX_TOKEN',
      'this service takes no recipient tokens: its operator must set INBOX_SECRET; use the API key meanwhile',
    );
  }
  const recipient = recipientId(request);
  if (!tokens.verify(recipient, token)) {
    throw new ApiError(
      'INBOX_TOKEN_MISMATCH',
      `this token does not open the inbox of ${recipient}: a recipient token opens only the inbox of the recipient it was issued for, under the current INBOX_SECRET`,
    );
  }
}

/** The query's parameters among `keys` (and the token, read by `authorize`); others are a 400. */
function readQuery(request: FastifyRequest, keys: readonly string[]): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [key, value] of Object.entries(request.query as Record<string, unknown>)) {
    if (key === 'access_token') continue;
    if (!keys.includes(key)) {
      const known = [...keys, 'access_token'].join(', ');
      throw new ApiError(
        'INVALID_QUERY',
        `unknown query parameter ${JSON.stringify(key)}; use ${known}`,
      );
    }
    if (typeof value !== 'string') throw new ApiError('INVALID_QUERY', `give ${key} once`);
    found[key] = value;
  }
  return found;
}

function whole(name: string, text: string, low: number, high: number): number {
  const value = Number(text);
  if (!/^\d{1,16}$/.test(text) || value < low || value > high) {
    throw new ApiError(
      'INVALID_QUERY',
      `${name} must be a whole number from ${low} to ${high}, got ${JSON.stringify(text.slice(0, 100))}`,
    );
  }
  return value;
}

function cursor(text: string): number {
  if (!/^\d{1,16}$/.test(text) || Number(text) < 1) {
    throw new ApiError('INVALID_CURSOR', 'before must be the nextCursor of the previous page');
  }
  return Number(text);
}

/** Compares a secret in constant time, whatever the lengths (both sides are hashed first). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
