/**
 * The load of the kill test: notify requests for webhook notifications, each with its own
 * `Idempotency-Key`, so that a request whose answer was lost to a kill can be sent again without
 * making a second notification. Only a 200 counts as accepted.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import { notificationId } from '../../packages/notifications/src/index.js';

/** Where requests go: the URL of a live server, waiting while it restarts. */
export interface NotifyTarget {
  url(): Promise<string>;
}

export interface NotifyClientOptions {
  target: NotifyTarget;
  /** Where the notifications are delivered (the ledger). */
  hookUrl: string;
  requests: number;
  concurrency: number;
  /** Sends of one request before it counts as failed. */
  maxTries?: number;
  /** Per send, in ms. */
  timeout?: number;
  /** Makes the idempotency keys of this run unique. */
  keyPrefix: string;
}

/** One request that got its 200. */
export interface Accepted {
  /** The task id the service answered with. */
  id: string;
  /** The `webhook-id` its delivery must carry. */
  webhookId: string;
}

export interface ClientReport {
  /** Notify requests (each possibly sent more than once). */
  requests: number;
  /** HTTP requests sent, retries included. */
  sends: number;
  accepted: number;
  /** Requests answered with a final error status (4xx). */
  refused: number;
  /** Requests without a 200 after every try. */
  failed: number;
  /** Sends that ended in a connection error or timeout (then retried). */
  connectionErrors: number;
  /** Sends answered 5xx (then retried). */
  serverErrors: number;
  /** Retried requests whose answer named another task than an earlier 200: must be 0. */
  idMismatches: number;
}

/** Sends the requests; emits `accepted` with the count after each 200. */
export class NotifyClient extends EventEmitter {
  readonly accepted = new Map<number, Accepted>();
  private readonly agent: http.Agent;
  private readonly report: ClientReport;

  constructor(private readonly options: NotifyClientOptions) {
    super();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
    this.report = {
      requests: options.requests,
      sends: 0,
      accepted: 0,
      refused: 0,
      failed: 0,
      connectionErrors: 0,
      serverErrors: 0,
      idMismatches: 0,
    };
  }

  async run(): Promise<ClientReport> {
    let next = 0;
    const lane = async () => {
      while (next < this.options.requests) await this.one(next++);
    };
    try {
      await Promise.all(Array.from({ length: this.options.concurrency }, lane));
    } finally {
      this.agent.destroy();
    }
    return { ...this.report, accepted: this.accepted.size };
  }

  private async one(seq: number): Promise<void> {
    const key = `${this.options.keyPrefix}-${seq}`;
    const body = JSON.stringify({
      channel: 'webhook',
      to: this.options.hookUrl,
      subject: 'chaos',
      data: { seq },
    });
    const tries = this.options.maxTries ?? 50;
    for (let attempt = 1; attempt <= tries; attempt++) {
      const url = await this.options.target.url();
      this.report.sends += 1;
      let answer: { status: number; body: string };
      try {
        answer = await this.post(`${url}/api/notifications/notify`, body, key);
      } catch {
        this.report.connectionErrors += 1;
        continue;
      }
      if (answer.status === 200) {
        const { id } = JSON.parse(answer.body) as { id: string };
        const earlier = this.accepted.get(seq);
        if (earlier && earlier.id !== id) this.report.idMismatches += 1;
        this.accepted.set(seq, { id, webhookId: `msg_${notificationId(key)}_0` });
        this.emit('accepted', this.accepted.size);
        return;
      }
      if (answer.status < 500) {
        this.report.refused += 1;
        return;
      }
      this.report.serverErrors += 1;
    }
    this.report.failed += 1;
  }

  private post(url: string, body: string, key: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'idempotency-key': key,
        },
        timeout: this.options.timeout ?? 15_000,
      });
      request.on('timeout', () => request.destroy(new Error(`no answer from ${url}`)));
      request.on('error', reject);
      request.on('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
        response.on('error', reject);
      });
      request.end(body);
    });
  }
}
