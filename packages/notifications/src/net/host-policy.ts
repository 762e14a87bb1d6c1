import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { domainToASCII } from 'node:url';
import { RefusedTargetError } from '../delivery-errors.js';
import { parseAddress, sameAddress, specialRange } from './addresses.js';

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses; tests inject one that maps names to 127.0.0.1. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo, like `node:http` uses), every address. */
export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map(({ address, family }) => ({
    address,
    family: family === 6 ? 6 : 4,
  }));

/**
 * Where outgoing requests may go: public addresses, and the host names or addresses of the
 * allow-list (`ALLOW_PRIVATE_HOSTS`) whatever they resolve to.
 */
export class HostPolicy {
  private readonly names: Set<string>;
  private readonly addresses: string[];

  constructor(allowed: readonly string[] = []) {
    // As a URL's host name is compared: lower case, without the dot that ends a full name.
    const entries = allowed
      .map((entry) => entry.trim().toLowerCase().replace(/\.$/, ''))
      .filter((e) => e !== '');
    this.addresses = entries.filter((entry) => parseAddress(entry) !== null);
    this.names = new Set(entries.filter((entry) => parseAddress(entry) === null));
  }

  /** True when `hostname` (a URL's host name) is on the allow-list by name. */
  allowsName(hostname: string): boolean {
    return this.names.has(stripBrackets(hostname).toLowerCase().replace(/\.$/, ''));
  }

  /** True when `host` (a name or an address) is on the allow-list itself. */
  lists(host: string): boolean {
    const bare = stripBrackets(host);
    return this.allowsName(bare) || this.addresses.some((allowed) => sameAddress(allowed, bare));
  }

  /** Why `address` may not be connected to, or null when it may. */
  refusal(address: string): string | null {
    if (this.addresses.some((allowed) => sameAddress(allowed, address))) return null;
    const special = specialRange(address);
    return special === null ? null : `${address} is not a public address: ${special}`;
  }

  /**
   * Checks a URL's host before any connection: an IP literal is judged here, since Node does not
   * call `lookup` for one. A host name is judged later, on the addresses it resolves to.
   */
  checkHost(hostname: string): void {
    const host = stripBrackets(hostname);
    if (isIP(host) === 0 || this.allowsName(host)) return;
    const refusal = this.refusal(host);
    if (refusal !== null) throw refused(hostname, refusal);
  }

  /**
   * A `lookup` for `node:http` and `node:net` options: resolves the name, then refuses the
   * connection unless every address it resolved to may be connected to. The socket connects to
   * the addresses checked here, so a name that resolves differently a second time (DNS
   * rebinding) gains nothing.
   */
  lookup(resolve: Resolver = systemResolver): LookupFunction {
    return (hostname, options, callback) => {
      const done = callback as (
        error: NodeJS.ErrnoException | null,
        address: string | ResolvedAddress[],
        family?: number,
      ) => void;
      this.resolveChecked(hostname, resolve).then(
        (addresses) => {
          const wanted =
            options.family === 4 || options.family === 6
              ? addresses.filter((a) => a.family === options.family)
              : addresses;
          if (wanted.length === 0) {
            const error: NodeJS.ErrnoException = new Error(
              `${hostname} has no IPv${options.family} address`,
            );
            error.code = 'ENOTFOUND';
            return done(error, []);
          }
          if (options.all) return done(null, wanted);
          done(null, wanted[0]!.address, wanted[0]!.family);
        },
        (error: NodeJS.ErrnoException) => done(error, []),
      );
    };
  }

  private async resolveChecked(hostname: string, resolve: Resolver): Promise<ResolvedAddress[]> {
    const addresses = await resolve(hostname);
    if (this.allowsName(hostname)) return addresses;
    for (const { address } of addresses) {
      const refusal = this.refusal(address);
      if (refusal !== null) throw refused(hostname, `it resolves to ${refusal}`);
    }
    return addresses;
  }
}

/** A host name as URLs may carry it: ASCII labels of letters, digits, "-" and "_". */
const HOST_NAME = /^(?=.{1,253}\.?$)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?$/i;

/**
 * Why an allow-list entry could never match, or null when it can. Entries are compared with the
 * host of a URL as the WHATWG URL parser gives it (IP addresses by value), so only what that
 * parser can give back is taken: a host name in ASCII, or an IP address. A URL, a port, a
 * wildcard or a range never equals a host, and neither does a name the parser rewrites
 * (`127.1` becomes 127.0.0.1, `bücher.example` xn--bcher-kva.example) or refuses (999.1.1.1).
 */
export function allowListProblem(entry: string): string | null {
  if (parseAddress(entry) !== null) return null;
  if (!HOST_NAME.test(entry)) {
    // An international name: URLs carry it in its ASCII (punycode) form.
    const ascii = /[^\p{ASCII}]/u.test(entry) ? domainToASCII(entry) : '';
    if (HOST_NAME.test(ascii)) {
      return `is written ${ascii} in URLs; list it that way`;
    }
    return 'is not a host name or an IP address: list hosts alone, without a scheme, port, path, wildcard or range';
  }
  let hostname: string;
  try {
    hostname = new URL(`http://${entry}/`).hostname;
  } catch {
    return 'is read as an IP address in URLs, and is not a valid one (four numbers from 0 to 255)';
  }
  const wanted = entry.toLowerCase().replace(/\.$/, '');
  if (hostname.replace(/\.$/, '') !== wanted) {
    return `is read as the IP address ${hostname} in URLs; list it that way`;
  }
  return null;
}

function refused(hostname: string, why: string): RefusedTargetError {
  return new RefusedTargetError(
    `refused to connect to ${hostname}: ${why}; notifications go to public addresses only (add the host to ALLOW_PRIVATE_HOSTS to allow it)`,
  );
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
