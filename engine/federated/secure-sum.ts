// Secure aggregation with pairwise masks (Bonawitz et al. 2017, its one-mask core): every pair of clients agrees a
// key (X25519), and expands it into a mask with AES-256-CTR; the lower id adds the mask, the higher subtracts it. Each
// client sends only its fixed-point, weighted, masked vector; summed over the participants the masks cancel exactly
// (integers modulo 2^32), so the server learns the weighted average and nothing of any one client's update.
// A client dropping after masking is covered by recovery.ts (shared seeds, double masking); a server colluding with
// clients is not (it learns what those clients could).
import {
  createCipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { InputError } from '../input-error.js';

/** Fractional bits of the fixed-point encoding: steps of 2^-20 (about 1e-6); encoded values stay within ±1024. */
export const FRACTION_BITS = 20;
const SCALE = 2 ** FRACTION_BITS;
export const FIXED_LIMIT = 2 ** (31 - FRACTION_BITS);
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface AgreementKey {
  /** base64 of the raw 32-byte X25519 public key: what a client announces, signed, for this round. */
  publicKey: string;
  /** base64 of the raw 32-byte private key: kept by the client only, for the round. */
  privateKey: string;
}

export function newAgreementKey(): AgreementKey {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const pub = publicKey.export({ format: 'der', type: 'spki' });
  const priv = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    publicKey: pub.subarray(pub.length - 32).toString('base64'),
    privateKey: priv.subarray(priv.length - 32).toString('base64'),
  };
}

function rawKey(b64: string, what: string): Buffer {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== b64) throw new InputError(`${what} is not a 32-byte base64 key`);
  return raw;
}

function publicKeyObject(b64: string, what: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([X25519_SPKI, rawKey(b64, what)]), format: 'der', type: 'spki' });
}

function privateKeyObject(b64: string): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([X25519_PKCS8, rawKey(b64, 'the agreement key')]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** The X25519 secret of a pair: this side's private key with the peer's public key. */
export function pairSecret(mine: AgreementKey, peerPublic: string): Buffer {
  return diffieHellman({
    privateKey: privateKeyObject(mine.privateKey),
    publicKey: publicKeyObject(peerPublic, 'a peer key'),
  });
}

/** The mask one pair shares for one context: AES-256-CTR under HKDF(X25519 secret, context), as 32-bit words. */
export function pairMask(mine: AgreementKey, peerPublic: string, context: string, length: number): Uint32Array {
  const secret = pairSecret(mine, peerPublic);
  const key = Buffer.from(hkdfSync('sha256', secret, Buffer.from(context), 'secmlops-secure-sum-v1 mask', 32));
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(length * 4)), cipher.final()]);
  return new Uint32Array(stream.buffer, stream.byteOffset, length);
}

/** share·w in fixed point, modulo 2^32. Values that do not fit are refused (the sum could wrap). */
export function encodeFixed(vector: Float32Array, share: number): Uint32Array {
  const out = new Uint32Array(vector.length);
  for (let i = 0; i < vector.length; i++) {
    // Bounding the unweighted value bounds the weighted sum too (the shares add up to at most 1): it cannot wrap.
    const v = vector[i] * share;
    if (!(Math.abs(vector[i]) < FIXED_LIMIT / 2))
      throw new InputError(
        `parameter ${i} is ${vector[i]}: secure aggregation encodes values within ±${FIXED_LIMIT / 2}`,
      );
    out[i] = Math.round(v * SCALE) >>> 0;
  }
  return out;
}

export function decodeFixed(sum: Uint32Array): Float32Array {
  const out = new Float32Array(sum.length);
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] | 0) / SCALE;
  return out;
}

export interface Participant {
  id: string;
  agreementKey: string;
}

/**
 * One client's masked contribution: its vector weighted by `share` (its samples over the participants' total),
 * in fixed point, plus the mask of every pair it belongs to (added when its id sorts first, subtracted otherwise).
 */
export function maskedContribution(
  vector: Float32Array,
  share: number,
  me: string,
  mine: AgreementKey,
  participants: Participant[],
  context: string,
): Uint32Array {
  const out = encodeFixed(vector, share);
  if (!participants.some((p) => p.id === me && p.agreementKey === mine.publicKey))
    throw new InputError(`${me} is not among the participants it is asked to mask for`);
  for (const peer of participants) {
    if (peer.id === me) continue;
    const mask = pairMask(mine, peer.agreementKey, context, vector.length);
    const add = me < peer.id;
    for (let i = 0; i < out.length; i++) out[i] = (add ? out[i] + mask[i] : out[i] - mask[i]) >>> 0;
  }
  return out;
}

/** The sum of every participant's masked contribution, modulo 2^32, decoded: the masks cancel. */
export function unmaskedSum(contributions: Uint32Array[]): Float32Array {
  if (contributions.length === 0) throw new Error('no contributions to sum');
  const sum = new Uint32Array(contributions[0].length);
  for (const c of contributions) {
    if (c.length !== sum.length)
      throw new Error(`contributions of ${sum.length} and ${c.length} values cannot be summed`);
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] + c[i]) >>> 0;
  }
  return decodeFixed(sum);
}
