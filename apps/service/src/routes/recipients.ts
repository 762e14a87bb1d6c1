import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import { RECIPIENT_ID, type Notifications, type StoredRecipient } from '@offload/notifications';
import { ApiError } from '../errors.js';

export interface RecipientRoutesOptions {
  notifications: Notifications;
}

/**
 * Stored recipients (see docs/templates.md): `PUT /recipients/:id` stores its addresses, time
 * zone and preferences (replacing what was stored), `GET` reads them, `DELETE` removes them all.
 */
export const recipientRoutes: FastifyPluginCallback<RecipientRoutesOptions> = (
  app,
  { notifications },
  done,
) => {
  const { recipients } = notifications;

  app.put('/recipients/:id', async (request): Promise<StoredRecipient> => {
    const id = recipientId(request);
    return recipients.put(id, recipients.check(request.body), new Date());
  });

  app.get('/recipients/:id', async (request): Promise<StoredRecipient> => {
    const id = recipientId(request);
    const found = await recipients.get(id);
    if (found === null) throw notFound(id);
    return found;
  });

  app.delete('/recipients/:id', async (request, reply) => {
    const id = recipientId(request);
    if (!(await recipients.delete(id))) throw notFound(id);
    return reply.code(204).send();
  });
  done();
};

/** The `:id` of the route, checked: a 400 `INVALID_RECIPIENT` unless it can name a recipient. */
export function recipientId(request: FastifyRequest): string {
  const { id } = request.params as { id: string };
  if (!RECIPIENT_ID.test(id)) {
    throw new ApiError(
      'INVALID_RECIPIENT',
      `${JSON.stringify(id.slice(0, 100))} is not a recipient id: use 1 to 100 of A-Z, a-z, 0-9, "_", ".", "@", ":" and "-", starting with a letter or digit`,
    );
  }
  return id;
}

function notFound(id: string): ApiError {
  return new ApiError(
    'RECIPIENT_NOT_FOUND',
    `no recipient has the id ${JSON.stringify(id)}; store it with PUT /api/recipients/${id}`,
  );
}
