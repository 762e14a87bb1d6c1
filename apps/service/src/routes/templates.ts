import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import {
  TEMPLATE_NAME,
  type Notifications,
  type RenderedTemplate,
  type TemplateVersion,
} from '@offload/notifications';
import type { Json } from 'offload';
import { ApiError } from '../errors.js';

export interface TemplateRoutesOptions {
  notifications: Notifications;
}

/** A template as the API answers it: the current version, and the older ones, newest first. */
export interface TemplateView extends TemplateVersion {
  versions: TemplateVersion[];
}

/**
 * Notification templates in Liquid (see docs/templates.md): `PUT /templates/:name` stores a new
 * version, `GET /templates/:name` answers the current one and lists the older ones, and
 * `POST /templates/:name/preview` renders the current one with `{"data": {…}}`.
 */
export const templateRoutes: FastifyPluginCallback<TemplateRoutesOptions> = (
  app,
  { notifications },
  done,
) => {
  const { templates } = notifications;

  app.put('/templates/:name', async (request): Promise<TemplateVersion> => {
    const name = templateName(request);
    return templates.put(name, templates.check(request.body), new Date());
  });

  app.get('/templates/:name', async (request): Promise<TemplateView> => {
    const name = templateName(request);
    const found = await templates.get(name);
    if (found === null) throw notFound(name);
    return { ...found.current, versions: found.older };
  });

  app.post(
    '/templates/:name/preview',
    async (request): Promise<RenderedTemplate & { version: number }> => {
      const name = templateName(request);
      const data = previewData(request.body);
      const rendered = await templates.render(name, data, 'name');
      return rendered;
    },
  );
  done();
};

function templateName(request: FastifyRequest): string {
  const { name } = request.params as { name: string };
  if (!TEMPLATE_NAME.test(name)) {
    throw new ApiError(
      'INVALID_TEMPLATE',
      `${JSON.stringify(name.slice(0, 100))} is not a template name: use 1 to 100 of A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit`,
    );
  }
  return name;
}

function previewData(body: unknown): { [key: string]: Json } {
  if (body === undefined) return {};
  const data = (body as { data?: unknown } | null)?.data;
  const keys = body !== null && typeof body === 'object' ? Object.keys(body) : [];
  if (
    body === null ||
    typeof body !== 'object' ||
    Array.isArray(body) ||
    keys.some((key) => key !== 'data') ||
    (data !== undefined && (data === null || typeof data !== 'object' || Array.isArray(data)))
  ) {
    throw new ApiError(
      'INVALID_NOTIFICATION',
      'the body must be {"data": {…}}: the variables to render the template with',
    );
  }
  return (data ?? {}) as { [key: string]: Json };
}

function notFound(name: string): ApiError {
  return new ApiError(
    'TEMPLATE_NOT_FOUND',
    `no template is named ${JSON.stringify(name)}; create it with PUT /api/templates/${encodeURIComponent(name)}`,
  );
}
