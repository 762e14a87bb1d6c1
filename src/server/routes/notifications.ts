import type { FastifyPluginCallback } from 'fastify';
import { notificationTask, parseNotifyRequest } from '../../notifications/index.js';

export interface NotifyAnswer {
  ok: true;
  message: 'Notification scheduled in background';
  /** The task that delivers it: follow it with GET /api/tasks/:id. */
  id: string;
}

/** `POST /notifications/notify`: the seed's endpoint, answered as soon as the task is stored. */
export const notificationRoutes: FastifyPluginCallback = (app, _options, done) => {
  app.post('/notifications/notify', async (request): Promise<NotifyAnswer> => {
    const { task, payload } = notificationTask(parseNotifyRequest(request.body));
    request.background.add(task, payload);
    // Stored now rather than just before the response, to answer with its id.
    const [stored] = await request.background.commit();
    return { ok: true, message: 'Notification scheduled in background', id: stored!.id };
  });
  done();
};
