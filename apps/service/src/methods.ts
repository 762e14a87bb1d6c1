import type { FastifyInstance, HTTPMethods } from 'fastify';
import { ApiError } from './errors.js';

/** The methods a path of the service may be called with; a path refuses those it does not take. */
const METHODS: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'];

/**
 * Makes a known path called with a method it does not take a 405 naming the methods it does
 * (`Allow`, RFC 9110), rather than a 404 saying there is no such route. The commonest case is
 * `curl /api/notifications/notify` without `-X POST`, which read as the notification "notify".
 *
 * Call it before the routes are registered, and the function it returns after: that adds, for
 * every path, a route for each method the path does not take. Static paths take precedence over
 * parametric ones in the router, so `GET /api/notifications/notify` reaches its 405 while
 * `GET /api/notifications/:id` still finds notifications.
 */
export function refuseOtherMethods(app: FastifyInstance): () => void {
  const taken = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = taken.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method);
    // Fastify answers HEAD for every GET route.
    if (methods.has('GET')) methods.add('HEAD');
    taken.set(route.url, methods);
  });

  return () => {
    for (const [url, methods] of [...taken]) {
      const others = METHODS.filter((method) => !methods.has(method));
      if (others.length === 0) continue;
      const allow = METHODS.filter((method) => methods.has(method)).join(', ');
      app.route({
        method: others,
        url,
        // Before the body is read: a 405 does not depend on what the body holds.
        onRequest: (request, reply, done) => {
          reply.header('allow', allow);
          done(
            new ApiError(
              'METHOD_NOT_ALLOWED',
              `${request.method} is not allowed on ${request.url.split('?')[0]}; use ${allow}`,
            ),
          );
        },
        handler: () => {
          throw new Error('unreachable: onRequest answers');
        },
      });
    }
  };
}
