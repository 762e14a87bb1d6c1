import type { FastifyPluginCallback } from 'fastify';
import type { Store } from 'offload';
import { ApiError } from '../errors.js';
import type { ServiceMetrics } from '../metrics.js';

export interface HealthOptions {
  store: Store;
  metrics: ServiceMetrics;
}

/** `/healthz` (the process answers), `/readyz` (the store answers), `/metrics` (Prometheus). */
export const healthRoutes: FastifyPluginCallback<HealthOptions> = (
  app,
  { store, metrics },
  done,
) => {
  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async () => {
    try {
      await store.ping();
    } catch (error) {
      throw new ApiError(
        'STORE_UNAVAILABLE',
        `the task store does not answer: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return { ok: true };
  });

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
  done();
};
