import type { ServerResponse } from 'node:http';
import { OffloadError } from '../errors/offload-error.js';
import type { Task } from '../types.js';

/** The error answer of every adapter: `{"ok":false,"error":{"code","message"}}`. */
export interface ErrorEnvelope {
  ok: false;
  error: { code: string; message: string };
}

/** The body of `accepted(...)`: the task's id, to ask about it at `Location`. */
export interface AcceptedBody {
  ok: true;
  id: string;
}

export interface AcceptedOptions {
  /**
   * Where the client asks about the task, from its id. Default `/api/tasks/:id`, the status route
   * of the Offload service.
   */
  location?: (id: string) => string;
}

/** An answer before a framework writes it: status, headers and a JSON body. */
export interface Answer<B> {
  status: number;
  headers: Record<string, string>;
  body: B;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The answer to a request that failed with `error`: the error's own `statusCode` (a
 * `BackgroundCommitError` has 503) and, for Offload's errors, their code and message. Any other
 * error is a 500 whose message says nothing of the server's code.
 */
export function errorAnswer(error: unknown): Answer<ErrorEnvelope> {
  const status = errorStatus(error);
  const known = error instanceof OffloadError;
  return {
    status,
    headers: { 'content-type': JSON_TYPE },
    body: {
      ok: false,
      error: {
        code: known ? error.code : status >= 500 ? 'INTERNAL_ERROR' : 'REQUEST_FAILED',
        message: known
          ? error.message
          : status >= 500
            ? 'the server failed to answer this request'
            : errorMessage(error),
      },
    },
  };
}

/** `202 Accepted` with `Location` where the client can ask about `task`. */
export function acceptedAnswer(
  task: Pick<Task, 'id'>,
  options: AcceptedOptions = {},
): Answer<AcceptedBody> {
  const location = options.location ?? defaultLocation;
  return {
    status: 202,
    headers: { 'content-type': JSON_TYPE, location: location(task.id) },
    body: { ok: true, id: task.id },
  };
}

/** Writes `answer` on a node:http response (and so on Express's). */
export function writeAnswer(res: ServerResponse, answer: Answer<unknown>): void {
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-length': String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/**
 * Answers `202 Accepted` on a node:http or Express response, with `Location: /api/tasks/:id` and
 * `{"ok":true,"id":"…"}`; `task` is one `await background.commit()` returned.
 */
export function accepted(
  res: ServerResponse,
  task: Pick<Task, 'id'>,
  options?: AcceptedOptions,
): void {
  writeAnswer(res, acceptedAnswer(task, options));
}

function defaultLocation(id: string): string {
  return `/api/tasks/${encodeURIComponent(id)}`;
}

function errorStatus(error: unknown): number {
  const { statusCode, status } = (error ?? {}) as { statusCode?: unknown; status?: unknown };
  const given = typeof statusCode === 'number' ? statusCode : status;
  return typeof given === 'number' && Number.isInteger(given) && given >= 400 && given <= 599
    ? given
    : 500;
}

function errorMessage(error: unknown): string {
  return error instanceof Error && error.message ? error.message : 'the request failed';
}
