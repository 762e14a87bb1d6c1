import type { FastifyPluginCallback } from 'fastify';
import { SUPPRESSION_ID, type Notifications, type Suppression } from '@offload/notifications';
import { ApiError } from '../errors.js';

export interface SuppressionRoutesOptions {
  notifications: Notifications;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * The suppression list (see docs/templates.md): `GET /suppressions` lists its entries by id
 * (`?after=<id>&limit=<1-1000>`), `DELETE /suppressions/:id` removes one, so that the address is
 * sent to again.
 */
export const suppressionRoutes: FastifyPluginCallback<SuppressionRoutesOptions> = (
  app,
  { notifications },
  done,
) => {
  const { suppressions } = notifications;

  app.get(
    '/suppressions',
    async (request): Promise<{ suppressions: Suppression[]; nextCursor: string | null }> => {
      const { after, limit } = readQuery(request.query as Record<string, unknown>);
      const page = await suppressions.list(after, limit + 1);
      const more = page.length > limit;
      if (more) page.length = limit;
      return { suppressions: page, nextCursor: more ? page[page.length - 1]!.id : null };
    },
  );

  app.delete('/suppressions/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    if (!SUPPRESSION_ID.test(id)) {
      throw new ApiError(
        'INVALID_SUPPRESSION_ID',
        `${JSON.stringify(id.slice(0, 100))} is not a suppression id; GET /api/suppressions lists them (sup_…)`,
      );
    }
    if (!(await suppressions.remove(id))) {
      throw new ApiError(
        'SUPPRESSION_NOT_FOUND',
        `no suppressed address has the id ${id}; it may have been removed already`,
      );
    }
    return reply.code(204).send();
  });
  done();
};

function readQuery(query: Record<string, unknown>): { after: string | undefined; limit: number } {
  const unknown = Object.keys(query).find((key) => key !== 'after' && key !== 'limit');
  if (unknown !== undefined) {
    throw new ApiError(
      'INVALID_QUERY',
      `unknown query parameter ${JSON.stringify(unknown)}; use after and limit`,
    );
  }
  const { after, limit } = query;
  if (after !== undefined && (typeof after !== 'string' || !SUPPRESSION_ID.test(after))) {
    throw new ApiError('INVALID_CURSOR', 'after must be the nextCursor of the previous page');
  }
  const count = limit === undefined ? DEFAULT_LIMIT : Number(limit);
  if (!Number.isInteger(count) || count < 1 || count > MAX_LIMIT || typeof limit === 'object') {
    throw new ApiError('INVALID_QUERY', `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  }
  return { after: after as string | undefined, limit: count };
}
