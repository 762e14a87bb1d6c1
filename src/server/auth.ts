import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

/**
 * Requires `Authorization: Bearer <apiKey>` on every route of `app` (register it in the scope of
 * `/api`). Both sides are hashed first, so the comparison takes the same time whatever the length
 * or content of the key a client sends.
 */
export function requireBearer(app: FastifyInstance, apiKey: string): void {
  const expected = digest(apiKey);
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    if (header === undefined) {
      return done(
        new ApiError(
          'UNAUTHORIZED',
          'this API needs the header Authorization: Bearer <OFFLOAD_API_KEY>',
        ),
      );
    }
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match || !timingSafeEqual(digest(match[1]!), expected)) {
      return done(
        new ApiError(
          'UNAUTHORIZED',
          'the bearer token is not the API key; send Authorization: Bearer <OFFLOAD_API_KEY>',
        ),
      );
    }
    done();
  });
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
