import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Dashboard } from './dashboard.js';
import { writeNode } from './adapters.js';
import { MAX_BODY } from './http.js';
import type { DashboardOptions } from './options.js';

/**
 * The Fastify plugin: `app.register(dashboard, { runtime, login })` answers under `basePath`
 * (default `/dashboard`). It reads form bodies in its own scope, so the app's content types stay
 * as they are, and stops the dashboard's listeners when Fastify closes.
 */
export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, options) => {
  const dashboard = new Dashboard(options);
  // Before the server closes: its open event streams would hold the close until they ended.
  app.addHook('preClose', (done) => {
    dashboard.close();
    done();
  });
  await app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: MAX_BODY },
      (_request, body, done) => done(null, body),
    );
    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const answer = await dashboard.handle({
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: typeof request.body === 'string' ? request.body : '',
      });
      if ('body' in answer) {
        return reply.code(answer.status).headers(answer.headers).send(answer.body);
      }
      // A stream of events: written on the socket, around Fastify.
      reply.hijack();
      writeNode(answer, request.raw, reply.raw);
    };
    const base = dashboard.basePath;
    for (const url of [base, `${base}/*`]) {
      scope.route({ method: ['GET', 'HEAD', 'POST'], url, handler });
    }
  });
};
