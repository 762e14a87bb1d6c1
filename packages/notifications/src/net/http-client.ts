import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { DeliveryTimeoutError, RefusedTargetError } from '../delivery-errors.js';
import type { HostPolicy } from './host-policy.js';
import { type Resolver } from './host-policy.js';

export interface HttpClientOptions {
  /** Which targets may be connected to. */
  policy: HostPolicy;
  /** How host names are resolved; default the system's. */
  resolve?: Resolver;
  /** Most bytes of a response body read; the rest is dropped. Default 16 KiB. */
  maxResponseBytes?: number;
}

export interface HttpRequest {
  url: URL;
  headers: Record<string, string>;
  body: string | Buffer;
  /** The whole exchange, from connecting to the end of the response, in ms. */
  timeout: number;
  /** The task's signal: aborting it aborts the request at once. */
  signal: AbortSignal;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The start of the body, as text. */
  body: string;
}

/**
 * POSTs to webhook URLs and push services, and nowhere it should not: the host is checked before
 * connecting (IP literals) and on the very addresses the socket connects to (host names, through
 * `lookup`), and the connected peer is checked once more. Redirects are never followed: the
 * response is returned as it is. Connections are not kept alive.
 */
export class HttpClient {
  private readonly policy: HostPolicy;
  private readonly resolve: Resolver | undefined;
  private readonly maxResponseBytes: number;

  constructor(options: HttpClientOptions) {
    this.policy = options.policy;
    this.resolve = options.resolve;
    this.maxResponseBytes = options.maxResponseBytes ?? 16 * 1024;
  }

  async post(request: HttpRequest): Promise<HttpResponse> {
    const { url, signal, timeout } = request;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RefusedTargetError(
        `refused ${url.protocol} URL: only http: and https: are sent to`,
      );
    }
    signal.throwIfAborted();
    this.policy.checkHost(url.hostname);

    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DeliveryTimeoutError(timeout, url.origin)),
      timeout,
    );
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.exchange(request, controller.signal);
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  private exchange(
    { url, headers, body }: HttpRequest,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    const transport = url.protocol === 'https:' ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      const outgoing = transport.request(
        url,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
          agent: false,
          lookup: this.policy.lookup(this.resolve),
          signal,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const finish = () =>
            resolve({
              status: response.statusCode ?? 0,
              statusText: response.statusMessage ?? '',
              headers: response.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            });
          response.on('data', (chunk: Buffer) => {
            chunks.push(chunk.subarray(0, this.maxResponseBytes - size));
            size += chunk.length;
            if (size >= this.maxResponseBytes) {
              response.destroy();
              finish();
            }
          });
          response.on('end', finish);
          response.on('error', reject);
        },
      );
      outgoing.on('socket', (socket: Socket) => {
        // Belt and braces: the addresses were checked before connecting; check the peer too.
        socket.once('connect', () => {
          const peer = socket.remoteAddress;
          const refusal = peer === undefined ? 'no peer address' : this.policy.refusal(peer);
          if (refusal !== null && !this.policy.allowsName(url.hostname)) {
            outgoing.destroy(new RefusedTargetError(`refused ${url.hostname}: ${refusal}`));
          }
        });
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }
}
