// Console sign-in tokens: `secmlops token issue --person P` signs {person, expiry} with the operator's Ed25519 key;
// the console verifies them with the public key. A token names a person; the workflow still checks their roles.
import { createPublicKey, randomUUID, sign, verify, type KeyObject } from 'node:crypto';

export interface ConsoleToken {
  person: string;
  /** Issued and expiry times, seconds since the epoch. */
  iat: number;
  exp: number;
  /** Unique per token, so sign-out can revoke it. */
  jti: string;
}

export class TokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenError';
  }
}

const PREFIX = 'smc1';

export function issueToken(person: string, ttlMs: number, key: KeyObject, now = Date.now()): string {
  const body: ConsoleToken = {
    person,
    iat: Math.floor(now / 1000),
    exp: Math.floor((now + ttlMs) / 1000),
    jti: randomUUID(),
  };
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  const signature = sign(null, Buffer.from(`${PREFIX}.${payload}`), key).toString('base64url');
  return `${PREFIX}.${payload}.${signature}`;
}

/** The token's claims, or a TokenError saying what is wrong with it. `publicKey` is base64 of the raw 32 bytes. */
export function verifyToken(token: string, publicKey: string, now = Date.now()): ConsoleToken {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[0] !== PREFIX) throw new TokenError('not a SecMLOps console token');
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(publicKey, 'base64')]),
    format: 'der',
    type: 'spki',
  });
  let ok = false;
  try {
    ok = verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'));
  } catch {
    ok = false;
  }
  if (!ok)
    throw new TokenError('the token’s signature is not the operator key’s (tampered, or issued with another key)');
  let claims: ConsoleToken;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString()) as ConsoleToken;
  } catch {
    throw new TokenError('the token’s claims are unreadable');
  }
  if (typeof claims.person !== 'string' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string')
    throw new TokenError('the token’s claims are incomplete');
  if (claims.exp * 1000 <= now)
    throw new TokenError(`the token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  return claims;
}
