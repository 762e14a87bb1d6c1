import {
  createCipheriv,
  createECDH,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  randomBytes,
  sign,
  type ECDH,
} from 'node:crypto';

/**
 * The cryptography of Web Push with node:crypto alone: message encryption as RFC 8291 says
 * (`aes128gcm` content coding of RFC 8188, one record) and VAPID (RFC 8292: an ES256 JWT).
 */

/** A VAPID key pair, base64url as browsers and `offload vapid` write them. */
export interface VapidKeys {
  /** The uncompressed P-256 public point: 65 bytes. Give it to browsers as `applicationServerKey`. */
  publicKey: string;
  /** The private scalar: 32 bytes. */
  privateKey: string;
}

/** Largest plaintext that fits the one 4096-byte record a push message is sent as. */
export const MAX_PUSH_PLAINTEXT = 4096 - 16 - 1 - 86;
const RECORD_SIZE = 4096;

/** A new VAPID key pair. */
export function generateVapidKeys(): VapidKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return {
    publicKey: ecdh.getPublicKey().toString('base64url'),
    privateKey: ecdh.getPrivateKey().toString('base64url'),
  };
}

/** What is wrong with a VAPID key pair, or null when the private key matches the public one. */
export function checkVapidKeys(keys: VapidKeys): string | null {
  const publicKey = Buffer.from(keys.publicKey, 'base64url');
  const privateKey = Buffer.from(keys.privateKey, 'base64url');
  if (publicKey.length !== 65 || publicKey[0] !== 4)
    return 'VAPID_PUBLIC_KEY must be the base64url of a 65-byte uncompressed P-256 point (run `offload vapid`)';
  if (privateKey.length !== 32)
    return 'VAPID_PRIVATE_KEY must be the base64url of 32 bytes (run `offload vapid`)';
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(privateKey);
    if (!ecdh.getPublicKey().equals(publicKey))
      return 'VAPID_PRIVATE_KEY does not belong to VAPID_PUBLIC_KEY; give the pair `offload vapid` printed';
  } catch {
    return 'VAPID_PRIVATE_KEY is not a valid P-256 private key (run `offload vapid`)';
  }
  return null;
}

/** True when `key` (base64url) is an uncompressed point on P-256, as a subscription's `p256dh` must be. */
export function isP256PublicKey(key: Buffer): boolean {
  if (key.length !== 65 || key[0] !== 4) return false;
  try {
    createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: key.subarray(1, 33).toString('base64url'),
        y: key.subarray(33).toString('base64url'),
      },
      format: 'jwk',
    });
    return true;
  } catch {
    return false;
  }
}

/**
 * Encrypts `plaintext` for a subscription (RFC 8291): an ephemeral ECDH key pair, the shared
 * secret mixed with the subscription's auth secret, then one aes128gcm record whose header
 * carries the salt and the ephemeral public key. `fixed` is for tests with known vectors.
 */
export function encryptPushMessage(
  plaintext: Buffer,
  subscription: { p256dh: Buffer; auth: Buffer },
  fixed: { salt?: Buffer; ephemeral?: ECDH } = {},
): Buffer {
  if (plaintext.length > MAX_PUSH_PLAINTEXT) {
    throw new RangeError(
      `a push message holds at most ${MAX_PUSH_PLAINTEXT} bytes, got ${plaintext.length}`,
    );
  }
  const salt = fixed.salt ?? randomBytes(16);
  let ephemeral = fixed.ephemeral;
  if (!ephemeral) {
    ephemeral = createECDH('prime256v1');
    ephemeral.generateKeys();
  }
  const serverPublic = ephemeral.getPublicKey();
  const shared = ephemeral.computeSecret(subscription.p256dh);
  const keyInfo = Buffer.concat([
    Buffer.from('WebPush: info\0'),
    subscription.p256dh,
    serverPublic,
  ]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, subscription.auth, keyInfo, 32));
  const cek = Buffer.from(
    hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16),
  );
  const nonce = Buffer.from(
    hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12),
  );
  const cipher = createCipheriv('aes-128-gcm', cek, nonce);
  // The last (and only) record ends with the delimiter 0x02, without padding.
  const ciphertext = Buffer.concat([
    cipher.update(plaintext),
    cipher.update(Buffer.from([2])),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  const header = Buffer.alloc(21);
  salt.copy(header, 0);
  header.writeUInt32BE(RECORD_SIZE, 16);
  header.writeUInt8(serverPublic.length, 20);
  return Buffer.concat([header, serverPublic, ciphertext]);
}

/**
 * The `Authorization` header VAPID asks for: `vapid t=<JWT>, k=<public key>`, the JWT signed with
 * ES256 for the push service's origin, valid for `validity` ms (at most 24 h; 12 h by default).
 */
export function vapidAuthorization(
  keys: VapidKeys,
  audience: string,
  subject: string,
  now: number,
  validity = 12 * 60 * 60 * 1000,
): string {
  const publicKey = Buffer.from(keys.publicKey, 'base64url');
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${encode({ typ: 'JWT', alg: 'ES256' })}.${encode({
    aud: audience,
    exp: Math.floor((now + validity) / 1000),
    sub: subject,
  })}`;
  const key = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: keys.privateKey,
      x: publicKey.subarray(1, 33).toString('base64url'),
      y: publicKey.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
  const signature = sign('sha256', Buffer.from(unsigned), { key, dsaEncoding: 'ieee-p1363' });
  return `vapid t=${unsigned}.${signature.toString('base64url')}, k=${keys.publicKey}`;
}
