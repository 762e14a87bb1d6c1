import { createHash } from 'node:crypto';
import type { Store, StoredRecord } from 'offload';
import type { ChannelName } from './delivery.js';

/**
 * The suppression list: addresses that said they are gone for good (a push subscription or a
 * webhook URL that answered 404 or 410, an email address refused for good with a 5.1.x status).
 * Kept in the store's records, so every process and every restart honours it: a notification to
 * stored recipients skips a suppressed address when it is accepted, and a delivery to one (a
 * notification sent to addresses, or one accepted before the address was suppressed) fails at
 * once, without a call. An operator removes an entry with `DELETE /api/suppressions/:id`.
 */
export const SUPPRESSIONS = 'notification-suppressions';

/** One suppressed address. */
export interface Suppression {
  /** `sup_` and 22 characters: a digest of channel and address, short enough for a URL. */
  id: string;
  channel: ChannelName;
  /** An email address (lower case), a webhook URL or a push endpoint. */
  address: string;
  /** What the address answered. */
  reason: string;
  /** When it was added, ISO 8601. */
  createdAt: string;
}

export const SUPPRESSION_ID = /^sup_[A-Za-z0-9_-]{22}$/;

/** Ids computed lately, by channel and address: a notify request computes one per address. */
const knownIds = new Map<string, string>();
const CACHED_IDS = 10_000;

/** The id of the entry of `address` on `channel`. */
export function suppressionId(channel: ChannelName, address: string): string {
  const key = `${channel}\0${address}`;
  let id = knownIds.get(key);
  if (id === undefined) {
    const digest = createHash('sha256').update(key).digest();
    id = `sup_${digest.subarray(0, 16).toString('base64url')}`;
    if (knownIds.size >= CACHED_IDS) knownIds.clear();
    knownIds.set(key, id);
  }
  return id;
}

/** The suppression list on a store's records. */
export class Suppressions {
  constructor(private readonly store: () => Promise<Store>) {}

  /** The entries of these addresses that are on the list, by id. */
  async find(
    addresses: readonly { channel: ChannelName; address: string }[],
  ): Promise<Map<string, Suppression>> {
    if (addresses.length === 0) return new Map();
    const ids = [...new Set(addresses.map((a) => suppressionId(a.channel, a.address)))];
    const records = await (await this.store()).getRecords(SUPPRESSIONS, ids);
    return new Map(records.map((record) => [record.id, toSuppression(record)]));
  }

  /** Why `address` is suppressed, or null when it is not. */
  async reason(channel: ChannelName, address: string): Promise<string | null> {
    const found = await this.find([{ channel, address }]);
    const entry = found.values().next().value;
    return entry === undefined ? null : describe(entry);
  }

  async add(
    channel: ChannelName,
    address: string,
    reason: string,
    now: Date,
  ): Promise<Suppression> {
    const id = suppressionId(channel, address);
    const value = JSON.stringify({ channel, address, reason: reason.slice(0, 500) });
    return toSuppression(
      await (await this.store()).putRecord({ collection: SUPPRESSIONS, id, value }, now.getTime()),
    );
  }

  /** A page of entries by id, after `after`. */
  async list(after: string | undefined, limit: number): Promise<Suppression[]> {
    const records = await (
      await this.store()
    ).listRecords(SUPPRESSIONS, {
      limit,
      ...(after === undefined ? {} : { after }),
    });
    return records.map(toSuppression);
  }

  async remove(id: string): Promise<boolean> {
    return (await this.store()).deleteRecord(SUPPRESSIONS, id);
  }
}

/** What a skipped delivery says of its suppressed address. */
export function describe(entry: Suppression): string {
  return `suppressed since ${entry.createdAt} (${entry.id}): ${entry.reason}`;
}

function toSuppression(record: StoredRecord): Suppression {
  const { channel, address, reason } = JSON.parse(record.value) as Omit<
    Suppression,
    'id' | 'createdAt'
  >;
  return {
    id: record.id,
    channel,
    address,
    reason,
    createdAt: new Date(record.createdAt).toISOString(),
  };
}
