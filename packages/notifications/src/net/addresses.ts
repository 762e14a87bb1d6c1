import { isIPv4, isIPv6 } from 'node:net';

/**
 * Which addresses a notification may be sent to. Everything that is not a public unicast address
 * is refused: loopback, private, link-local (cloud metadata lives at 169.254.169.254), shared
 * (CGNAT), unique-local, unspecified, multicast, documentation, benchmarking and reserved ranges,
 * following the IANA special-purpose address registries. An IPv6 address that carries an IPv4
 * address (IPv4-mapped, NAT64, 6to4) is judged by the IPv4 address it carries.
 */

interface Range {
  /** The network, as bytes; its length says the family (4 or 16). */
  network: Uint8Array;
  bits: number;
  name: string;
}

function range(cidr: string, name: string): Range {
  const [address, bits] = cidr.split('/') as [string, string];
  return { network: parseAddress(address)!, bits: Number(bits), name: `${name} (${cidr})` };
}

const IPV4_SPECIAL: readonly Range[] = [
  range('0.0.0.0/8', 'unspecified, "this network"'),
  range('10.0.0.0/8', 'private'),
  range('100.64.0.0/10', 'shared address space (CGNAT)'),
  range('127.0.0.0/8', 'loopback'),
  range('169.254.0.0/16', 'link-local, where cloud metadata services answer'),
  range('172.16.0.0/12', 'private'),
  range('192.0.0.0/24', 'IETF protocol assignments'),
  range('192.0.2.0/24', 'documentation'),
  range('192.31.196.0/24', 'AS112'),
  range('192.52.193.0/24', 'AMT'),
  range('192.88.99.0/24', '6to4 relay anycast'),
  range('192.168.0.0/16', 'private'),
  range('192.175.48.0/24', 'AS112'),
  range('198.18.0.0/15', 'benchmarking'),
  range('198.51.100.0/24', 'documentation'),
  range('203.0.113.0/24', 'documentation'),
  range('224.0.0.0/4', 'multicast'),
  range('240.0.0.0/4', 'reserved'),
];

/** IPv6 ranges that carry an IPv4 address in their last 32 bits, or (6to4) in bits 16 to 48. */
const IPV6_CARRYING_IPV4: readonly (Range & { at: number })[] = [
  { ...range('::ffff:0:0/96', ''), name: 'IPv4-mapped', at: 12 },
  { ...range('64:ff9b::/96', ''), name: 'NAT64', at: 12 },
  { ...range('2002::/16', ''), name: '6to4', at: 2 },
];

const IPV6_SPECIAL: readonly Range[] = [
  range('::/128', 'unspecified'),
  range('::1/128', 'loopback'),
  range('::/96', 'IPv4-compatible (deprecated)'),
  range('64:ff9b:1::/48', 'local-use NAT64'),
  range('100::/64', 'discard-only'),
  range('2001::/23', 'IETF protocol assignments'),
  range('2001:db8::/32', 'documentation'),
  range('3fff::/20', 'documentation'),
  range('5f00::/16', 'segment routing (SRv6)'),
  range('fc00::/7', 'unique-local'),
  range('fe80::/10', 'link-local'),
  range('fec0::/10', 'site-local (deprecated)'),
  range('ff00::/8', 'multicast'),
];

/** The only IPv6 addresses allocated for global unicast. */
const IPV6_GLOBAL = range('2000::/3', 'global unicast');

/**
 * The special-purpose range an IP address is in, described for an error message
 * (`"private (10.0.0.0/8)"`), or null when it is a public unicast address. A string that is not
 * an IP address is described as such: it is never public.
 */
export function specialRange(address: string): string | null {
  const bytes = parseAddress(address);
  if (!bytes) return 'not an IP address';
  if (bytes.length === 4) return findRange(bytes, IPV4_SPECIAL);
  for (const carrier of IPV6_CARRYING_IPV4) {
    if (!contains(carrier, bytes)) continue;
    const inner = bytes.subarray(carrier.at, carrier.at + 4);
    const found = findRange(inner, IPV4_SPECIAL);
    return found === null ? null : `${carrier.name} of ${formatIPv4(inner)}, ${found}`;
  }
  const found = findRange(bytes, IPV6_SPECIAL);
  if (found !== null) return found;
  return contains(IPV6_GLOBAL, bytes) ? null : 'reserved (outside 2000::/3)';
}

/** True for a public unicast address, to which notifications may go without being allowed. */
export function isPublicAddress(address: string): boolean {
  return specialRange(address) === null;
}

/** Two spellings of one address (`::1` and `0:0:0:0:0:0:0:1`, or an IPv4-mapped form) compare equal. */
export function sameAddress(a: string, b: string): boolean {
  const x = unmapped(parseAddress(a));
  const y = unmapped(parseAddress(b));
  return x !== null && y !== null && x.length === y.length && x.every((byte, i) => byte === y[i]);
}

function unmapped(bytes: Uint8Array | null): Uint8Array | null {
  if (bytes?.length === 16 && contains(IPV6_CARRYING_IPV4[0]!, bytes)) return bytes.subarray(12);
  return bytes;
}

function findRange(bytes: Uint8Array, ranges: readonly Range[]): string | null {
  return ranges.find((r) => contains(r, bytes))?.name ?? null;
}

function contains({ network, bits }: Range, bytes: Uint8Array): boolean {
  if (network.length !== bytes.length) return false;
  for (let bit = 0; bit < bits; bit += 8) {
    const mask = bits - bit >= 8 ? 0xff : (0xff << (8 - (bits - bit))) & 0xff;
    if ((network[bit / 8]! & mask) !== (bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

/** An IP address as 4 or 16 bytes; null when it is not one. A zone (`fe80::1%eth0`) is ignored. */
export function parseAddress(text: string): Uint8Array | null {
  const address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIPv4(address)) return Uint8Array.from(address.split('.').map(Number));
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return null;
  let tail: number[] = [];
  let groups = bare;
  const dotted = bare.lastIndexOf(':');
  if (bare.includes('.')) {
    tail = bare
      .slice(dotted + 1)
      .split('.')
      .map(Number);
    groups = `${bare.slice(0, dotted + 1)}0:0`;
  }
  const [head, rest] = groups.split('::') as [string, string | undefined];
  const words = (part: string | undefined) =>
    part
      ? part
          .split(':')
          .filter((w) => w !== '')
          .map((w) => parseInt(w, 16))
      : [];
  const left = words(head);
  const right = words(rest);
  const middle =
    rest === undefined ? [] : new Array<number>(8 - left.length - right.length).fill(0);
  const all = [...left, ...middle, ...right];
  const bytes = new Uint8Array(16);
  all.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return bytes;
}

function formatIPv4(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}
