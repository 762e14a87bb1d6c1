import type { IncomingHttpHeaders } from 'node:http';

/** A request as the dashboard reads it, whatever the framework. */
export interface DashboardRequest {
  method: string;
  /** The path and query as the client sent them, mount path included (`/dashboard/tasks?…`). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The body as text (`application/x-www-form-urlencoded` forms); empty without one. */
  body: string;
}

/** A whole answer, or (`stream`) a stream of server-sent events. */
export type DashboardResponse =
  | { status: number; headers: Record<string, string | string[]>; body: string | Buffer }
  | {
      status: number;
      headers: Record<string, string | string[]>;
      /**
       * Starts the stream: `send` writes a frame, `end` ends the response (the dashboard closes);
       * returns what to call once the client is gone.
       */
      stream: (send: (frame: string) => void, end: () => void) => () => void;
    };

/** The longest form body the dashboard reads. */
export const MAX_BODY = 64 * 1024;

/**
 * No inline script or style, nothing from elsewhere: the pages load their one stylesheet and one
 * script from the dashboard itself.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
};

export function htmlResponse(
  status: number,
  body: string,
  headers: Record<string, string | string[]> = {},
): DashboardResponse {
  return {
    status,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    },
    body,
  };
}

export function jsonResponse(
  status: number,
  value: unknown,
  headers: Record<string, string | string[]> = {},
): DashboardResponse {
  return {
    status,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...headers,
    },
    body: JSON.stringify(value),
  };
}

export function redirect(
  location: string,
  headers: Record<string, string | string[]> = {},
): DashboardResponse {
  return {
    status: 303,
    headers: { ...SECURITY_HEADERS, location, 'cache-control': 'no-store', ...headers },
    body: '',
  };
}

/** One value of a header given once or more. */
export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
