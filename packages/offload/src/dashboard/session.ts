import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A visitor's session, kept in a cookie the server signs: nothing is stored on the server. */
export interface Session {
  /** Random; the CSRF token is derived from it. */
  id: string;
  /** Epoch ms after which the cookie is refused. */
  expires: number;
}

export const COOKIE_NAME = 'offload_dashboard';

/**
 * Signs and checks session cookies and CSRF tokens with HMAC-SHA256 under one secret. A cookie is
 * `<payload>.<signature>`, the payload base64url JSON; a CSRF token is the HMAC of the session id,
 * so a page of one session carries a token no other session accepts.
 */
export class Sessions {
  private readonly secret: Buffer;

  constructor(
    secret: string | Buffer,
    private readonly lifetime: number,
  ) {
    this.secret = createHash('sha256').update(secret).digest();
  }

  create(now: number): { session: Session; cookie: string } {
    const session = { id: randomBytes(18).toString('base64url'), expires: now + this.lifetime };
    const payload = Buffer.from(JSON.stringify({ i: session.id, e: session.expires })).toString(
      'base64url',
    );
    return { session, cookie: `${payload}.${this.sign(`session.${payload}`)}` };
  }

  /** The session a cookie value carries, or null when it is forged, malformed or expired. */
  read(value: string | undefined, now: number): Session | null {
    if (value === undefined) return null;
    const dot = value.indexOf('.');
    if (dot <= 0) return null;
    const payload = value.slice(0, dot);
    if (!sameText(value.slice(dot + 1), this.sign(`session.${payload}`))) return null;
    try {
      const { i, e } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as {
        i?: unknown;
        e?: unknown;
      };
      if (typeof i !== 'string' || typeof e !== 'number' || e <= now) return null;
      return { id: i, expires: e };
    } catch {
      return null;
    }
  }

  csrfToken(session: Session): string {
    return this.sign(`csrf.${session.id}`);
  }

  checkCsrf(session: Session, token: string | undefined): boolean {
    return token !== undefined && sameText(token, this.csrfToken(session));
  }

  private sign(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url');
  }
}

/** Compares in a time that does not depend on where the texts differ. */
export function sameText(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
