import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';
import { isInboxRoute } from './routes/inbox.js';

export interface BearerOptions {
  /** Leave `/metrics` open (`METRICS_PUBLIC=true`): for a scraper on a private network. */
  metricsPublic?: boolean;
}

/**
 * Requires `Authorization: Bearer <apiKey>` on every request to `/api` and below, whether or not
 * a route answers it (an unknown path is a 401 too, not a 404 that tells which paths exist), and
 * on `/metrics` unless `metricsPublic`. `/healthz` and `/readyz` stay open. Register it on the
 * root instance, after the hook that checks the Host header. The inbox's routes are left to
 * their own check, which takes the key or a recipient token (routes/inbox.ts). Both sides are hashed first, so the
 * comparison takes the same time whatever the length or content of the key a client sends.
 */
export function requireBearer(
  app: FastifyInstance,
  apiKey: string,
  { metricsPublic = false }: BearerOptions = {},
): void {
  const expected = digest(apiKey);
  app.addHook('onRequest', (request, _reply, done) => {
    const area = protectedArea(request, metricsPublic);
    if (area === null) return done();
    const header = request.headers.authorization;
    if (header === undefined) {
      return done(
        new ApiError(
          'UNAUTHORIZED',
          `${area} needs the header Authorization: Bearer <OFFLOAD_API_KEY>`,
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

/**
 * What of the service `request` asks for, when that needs the key: by the route it reached, or,
 * when none answers it, by its path as the router reads it (percent-decoded). Null when open.
 */
function protectedArea(request: FastifyRequest, metricsPublic: boolean): string | null {
  // The inbox's routes check the key themselves, or a recipient token in its place.
  if (isInboxRoute(request.routeOptions.url)) return null;
  const path = request.routeOptions.url ?? decodedPath(request.url);
  if (path === '/api' || path.startsWith('/api/')) return 'this API';
  if (metricsPublic || (path !== '/metrics' && path !== '/metrics/')) return null;
  return '/metrics';
}

function decodedPath(url: string): string {
  const end = url.indexOf('?');
  const path = end === -1 ? url : url.slice(0, end);
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
