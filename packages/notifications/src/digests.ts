import { createHash } from 'node:crypto';
import {
  defineTask,
  type Clock,
  type Json,
  type Runtime,
  type Store,
  type StoredRecord,
  type TaskDefinition,
} from 'offload';
import type { NotificationContent } from './content.js';
import { deferral, type DeliveryHours } from './delivery-hours.js';
import {
  deliveryTaskName,
  type ChannelName,
  type InlineDelivery,
  type Recipient,
} from './delivery.js';
import type { DigestRequest } from './digest-request.js';
import { address, type PlannedDelivery } from './prepare.js';
import type { RenderedTemplate, Templates, TemplateSource } from './templates.js';

/**
 * Digests: notifications to one recipient (one address on one channel) with the same digest key
 * are gathered while a window is open and sent as one delivery when it closes.
 *
 * Nothing is held in memory. A window is a task, `notifications.digest`, keyed
 * `digest:<digest>:<window number>` and due when the window closes; the first notification opens
 * it (the key makes concurrent openers share one). Each notification is a record under the
 * window's key. When the task runs, it reads the records, renders them into one delivery task
 * (keyed by the window, so a second run makes no second delivery) and deletes them.
 *
 * A notification joins a window only while it is open: queued, never started, and due later than
 * the request's `now`; at its closing time or after, it opens the next one. After storing its
 * record, the notification reads the window's task again: still never started, so its run (which
 * reads the records after it starts) will see the record. Otherwise the window may or may not
 * have read it, and the two settle it with a claim: a task keyed by the window and the
 * notification, stored once, whose payload says who took the event. The window claims every
 * record it read, the late notification its own; whoever stores the claim first has it. A late
 * notification that lost the window moves to the next one; one the window took stays. So an
 * event is sent once, in exactly one window, whatever crashes in between: every step is stored,
 * and repeating it finds what the first try stored.
 */

export const DIGEST_TASK = 'notifications.digest';
export const DIGEST_CLAIM_TASK = 'notifications.digest-claim';
/** One record per notification in an open window, by `<window key>/<notification>`. */
export const DIGEST_EVENTS = 'notification-digest-events';
/** The digests a notification joined, by notification id. */
export const DIGEST_JOINS = 'notification-digest-joins';
/** The latest window of each digest, by digest: a hint that saves walking past closed windows. */
const LATEST = 'notification-digest-latest';

/** The payload of a window's task. */
export interface DigestWindow {
  digest: string;
  window: number;
  key: string;
  channel: ChannelName;
  to: Recipient;
  recipient?: string;
  topic?: string;
  /** The recipient's delivery hours: the digest's delivery is deferred by them too. */
  hours?: DeliveryHours;
  template: string | null;
  opensAt: string;
  closesAt: string;
}

/** One notification in a digest, as its template sees it. */
export interface DigestEvent extends NotificationContent {
  notification: string;
  createdAt: string;
}

/** What a window's task returns. */
export interface DigestResult {
  events: number;
  notifications: string[];
  /** The delivery task, or null when no event was left (all moved to the next window). */
  delivery: string | null;
}

/** A window a notification joined, as stored for `GET /api/notifications/:id`. */
export interface JoinedDigest {
  task: string;
  key: string;
  channel: ChannelName;
  recipient: string | null;
  closesAt: string;
}

interface Claim {
  by: 'digest' | 'moved';
}

export type DigestRuntime = Pick<Runtime, 'enqueue' | 'enqueueMany' | 'get' | 'list'>;

/**
 * The template of a digest that names none: a line per event, its subject and body cut to 100
 * characters each, the first 80 events and a count of the rest, so that it always fits a
 * delivery (10,000 characters of text).
 */
export const DEFAULT_DIGEST_TEMPLATE: TemplateSource = {
  subject: '{{ count }} notification{% if count != 1 %}s{% endif %} ({{ key }})',
  text: [
    '{% for event in events limit: 80 %}- ',
    '{% if event.subject %}{{ event.subject | truncate: 100 }}{% if event.body %}: {% endif %}{% endif %}',
    '{{ event.body | truncate: 100 }}\n{% endfor %}',
    '{% if count > 80 %}… and {{ count | minus: 80 }} more\n{% endif %}',
  ].join(''),
  html: null,
  pushTitle: null,
};

/** Records read at a time. */
const PAGE = 1000;

export class Digests {
  private runtime: DigestRuntime | null = null;

  constructor(
    private readonly store: () => Promise<Store>,
    private readonly templates: Templates,
    private readonly clock: Clock,
  ) {}

  attach(runtime: DigestRuntime): void {
    this.runtime = runtime;
  }

  /** Renders a digest of `events`: with the named template, or the default one. */
  async render(
    template: string | null,
    key: string,
    events: readonly DigestEvent[],
  ): Promise<RenderedTemplate> {
    const data = { key, count: events.length, events: events as unknown as Json[] };
    if (template === null)
      return this.templates.preview(DEFAULT_DIGEST_TEMPLATE, 'digest', data, 0);
    return this.templates.render(template, data, 'digest.template');
  }

  /**
   * Adds notification `id` (its `content`, accepted at `now`) to the open window of the digest
   * that `delivery` belongs to, opening one when none is; resolves once it is stored.
   */
  async join(
    delivery: PlannedDelivery,
    request: DigestRequest,
    id: string,
    content: NotificationContent,
    now: Date,
  ): Promise<JoinedDigest> {
    const runtime = this.need();
    const store = await this.store();
    const digest = digestId(delivery, request.key);
    const [latest] = await store.getRecords(LATEST, [digest]);
    const hinted = latest ? (JSON.parse(latest.value) as { window: number }).window : 1;
    let number = hinted;
    const event: DigestEvent = { notification: id, createdAt: now.toISOString(), ...content };
    for (;;) {
      const key = windowKey(digest, number);
      const found = (await runtime.list({ keyPrefix: key, limit: 1 })).tasks[0];
      const window =
        found ??
        (await runtime.enqueue(DIGEST_TASK, this.window(delivery, request, digest, number, now), {
          key,
          runAt: new Date(now.getTime() + request.window),
        }));
      if (!(unstarted(window) && window.runAt.getTime() > now.getTime())) {
        number += 1;
        continue;
      }
      if (latest === undefined || number !== hinted) {
        await store.putRecord(
          { collection: LATEST, id: digest, value: JSON.stringify({ window: number }) },
          now.getTime(),
        );
      }
      const record = `${key}/${id}`;
      await store.putRecord(
        { collection: DIGEST_EVENTS, id: record, value: JSON.stringify(event) },
        now.getTime(),
      );
      const again = await runtime.get(window.id);
      if (again === null || !unstarted(again)) {
        // The window started: it read the record, or not; the claim says which.
        const claim = await runtime.enqueue(DIGEST_CLAIM_TASK, { by: 'moved' } satisfies Claim, {
          key: claimKey(record),
        });
        if ((claim.payload as Partial<Claim> | null)?.by !== 'digest') {
          await store.deleteRecord(DIGEST_EVENTS, record);
          number += 1;
          continue;
        }
      }
      return {
        task: window.id,
        key: request.key,
        channel: delivery.channel,
        recipient: delivery.recipient ?? null,
        closesAt: window.runAt.toISOString(),
      };
    }
  }

  /**
   * Stores which digests notification `id` joined, with `request`, a digest of the request that
   * asked (see `requestDigest`), to tell a repeated request from another one with the same id.
   */
  async recordJoins(
    id: string,
    request: string,
    joined: readonly JoinedDigest[],
    now: Date,
  ): Promise<void> {
    const value = JSON.stringify({ request, digests: joined });
    await (await this.store()).putRecord({ collection: DIGEST_JOINS, id, value }, now.getTime());
  }

  /** The digests notification `id` joined and when, or null when it joined none. */
  async joinsOf(
    id: string,
  ): Promise<{ createdAt: Date; request: string; digests: JoinedDigest[] } | null> {
    const [record] = await (await this.store()).getRecords(DIGEST_JOINS, [id]);
    if (record === undefined) return null;
    const { request, digests } = JSON.parse(record.value) as {
      request: string;
      digests: JoinedDigest[];
    };
    return { createdAt: new Date(record.createdAt), request, digests };
  }

  /** The task of a window: when it closes, one delivery of every event it took. */
  task(): TaskDefinition<DigestWindow> {
    return defineTask<DigestWindow>({
      name: DIGEST_TASK,
      run: async (window, ctx): Promise<DigestResult> => {
        const runtime = this.need();
        const store = await this.store();
        const key = windowKey(window.digest, window.window);
        const records = await readAll(store, `${key}/`);
        const claims =
          records.length === 0
            ? []
            : await runtime.enqueueMany(
                records.map((record) => ({
                  task: DIGEST_CLAIM_TASK,
                  payload: { by: 'digest' } satisfies Claim,
                  options: { key: claimKey(record.id) },
                })),
              );
        const taken = records.filter(
          (_, i) => (claims[i]!.payload as Partial<Claim> | null)?.by === 'digest',
        );
        const events = taken
          .map((record) => JSON.parse(record.value) as DigestEvent)
          .sort(
            (a, b) =>
              a.createdAt.localeCompare(b.createdAt) ||
              a.notification.localeCompare(b.notification),
          );
        if (events.length === 0) return { events: 0, notifications: [], delivery: null };
        const rendered = await this.render(window.template, window.key, events);
        const now = new Date(this.clock.now());
        const payload: InlineDelivery = {
          notification: null,
          index: 0,
          request: null,
          createdAt: window.closesAt,
          to: window.to,
          ...(window.recipient === undefined ? {} : { recipient: window.recipient }),
          ...(window.topic === undefined ? {} : { topic: window.topic }),
          subject: rendered.subject,
          body: rendered.body,
          html: window.channel === 'email' ? rendered.html : null,
          data: { digest: window.key, count: events.length },
          ...(rendered.title === null ? {} : { title: rendered.title }),
        };
        const deferred = window.hours === undefined ? null : deferral(window.hours, now);
        const delivery = await runtime.enqueue(deliveryTaskName(window.channel), payload, {
          key: `digest-delivery:${key}`,
          ...(deferred === null ? {} : { runAt: deferred.until }),
        });
        // Read by no one once the delivery is stored; a run after a crash claims nothing new.
        await Promise.all(taken.map((record) => store.deleteRecord(DIGEST_EVENTS, record.id)));
        ctx.logger.debug({ digest: window.key, events: events.length }, 'digest closed');
        return {
          events: events.length,
          notifications: events.map((event) => event.notification),
          delivery: delivery.id,
        };
      },
    });
  }

  /** The task that settles who took a late event: nothing to do once stored. */
  claimTask(): TaskDefinition<Claim> {
    return defineTask<Claim>({ name: DIGEST_CLAIM_TASK, run: () => undefined });
  }

  private window(
    delivery: PlannedDelivery,
    request: DigestRequest,
    digest: string,
    number: number,
    now: Date,
  ): DigestWindow {
    return {
      digest,
      window: number,
      key: request.key,
      channel: delivery.channel,
      to: delivery.to,
      ...(delivery.recipient === undefined ? {} : { recipient: delivery.recipient }),
      ...(delivery.topic === undefined ? {} : { topic: delivery.topic }),
      ...(delivery.hours === undefined ? {} : { hours: delivery.hours }),
      template: request.template,
      opensAt: now.toISOString(),
      closesAt: new Date(now.getTime() + request.window).toISOString(),
    };
  }

  private need(): DigestRuntime {
    if (this.runtime === null) {
      throw new Error(
        'digests need the runtime: call notifications.attach(runtime) once the runtime is made',
      );
    }
    return this.runtime;
  }
}

/** Every record of the events of a window (`prefix`). */
async function readAll(store: Store, prefix: string): Promise<StoredRecord[]> {
  const records: StoredRecord[] = [];
  for (;;) {
    const after = records.at(-1)?.id;
    const page = await store.listRecords(DIGEST_EVENTS, {
      prefix,
      limit: PAGE,
      ...(after === undefined ? {} : { after }),
    });
    records.push(...page);
    if (page.length < PAGE) return records;
  }
}

/** Queued and never started: its run, which starts by reading the records, is still to come. */
function unstarted(task: { state: string; startedAt: Date | null }): boolean {
  return task.state === 'queued' && task.startedAt === null;
}

/** A digest: one recipient (or address) on one channel, and the client's key. */
function digestId(delivery: PlannedDelivery, key: string): string {
  const who = delivery.recipient ?? address(delivery.channel, delivery.to);
  const hash = createHash('sha256').update(`${delivery.channel}\0${who}\0${key}`).digest();
  return `dg_${hash.subarray(0, 16).toString('base64url')}`;
}

export function windowKey(digest: string, number: number): string {
  return `digest:${digest}:${String(number).padStart(10, '0')}`;
}

function claimKey(record: string): string {
  return `digest-claim:${record}`;
}
