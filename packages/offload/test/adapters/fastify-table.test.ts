import Fastify from 'fastify';
import { accepted, errorAnswer, offload } from '../../src/fastify/index.js';
import { adapterTable } from './table.js';
import { listening, thrown } from './servers.js';

adapterTable({
  name: 'offload/fastify',
  async serve({ runtime, start, routes }) {
    const app = Fastify();
    await app.register(offload, { runtime, start });
    // The envelope is the app's choice in Fastify: its error handler writes it.
    app.setErrorHandler((error, _request, reply) => {
      const answer = errorAnswer(error);
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    });
    for (const [path, route] of Object.entries(routes)) {
      app.all(path, async (request, reply) => {
        const answer = await route(request.background);
        if ('throws' in answer) throw thrown(answer, 'statusCode');
        if ('accepted' in answer) return accepted(reply, answer.accepted);
        return reply.code(answer.status).send(answer.json);
      });
    }
    await app.listen({ port: 0, host: '127.0.0.1' });
    const served = await listening(app.server);
    return { ...served, close: () => app.close() };
  },
});
