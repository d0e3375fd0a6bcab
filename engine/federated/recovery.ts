// Secure aggregation that survives drops (Bonawitz et al. 2017, double masking): before masking, each client deals
// Shamir shares of its pairwise-mask key s_u and of a fresh self-mask seed b_u to every participant, each share
// sealed for its holder (AES-256-GCM under the pair's X25519 channel secret). A client's masked input is
// x_u + PRG(b_u) + Σ ±PRG(s_u, s_v). When the masked inputs are in, each survivor reveals, per participant, the share
// of b_v if v's input arrived and the share of s_v if it did not, never both: the server removes the survivors' self
// masks and the dropped clients' pairwise masks, and learns the sum alone. With threshold t > n/2 and each client
// revealing once per round, the orchestration alone cannot gather t shares of both secrets of one client (the
// threshold is the policy's rule, policy/federated-threshold.ts). Not covered: an orchestrator colluding with a
// client, whose own shares count towards both halves (Bonawitz's consistency round is not built).
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  randomBytes,
} from 'node:crypto';
import { InputError } from '../input-error.js';
import { decodeFixed, pairMask, pairSecret, type AgreementKey } from './secure-sum.js';
import { combine, split } from './shamir.js';

export const SECRET_BYTES = 32;
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The self mask PRG(b_u): AES-256-CTR under HKDF(b_u, context), as 32-bit words. */
export function selfMask(seed: Uint8Array, context: string, length: number): Uint32Array {
  if (seed.length !== SECRET_BYTES) throw new InputError(`a self-mask seed of ${seed.length} bytes`);
  const key = Buffer.from(hkdfSync('sha256', seed, Buffer.from(context), 'secmlops-secure-sum-v2 self mask', 32));
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const stream = Buffer.concat([cipher.update(Buffer.alloc(length * 4)), cipher.final()]);
  return new Uint32Array(stream.buffer, stream.byteOffset, length);
}

/** out += sign·mask, modulo 2^32. */
export function addMask(out: Uint32Array, mask: Uint32Array, sign: 1 | -1): void {
  for (let i = 0; i < out.length; i++) out[i] = (sign === 1 ? out[i] + mask[i] : out[i] - mask[i]) >>> 0;
}

/** The agreement key whose private half is `privateKey` (raw, base64), its public half derived. */
export function keyFromPrivate(privateKey: string): AgreementKey {
  const raw = Buffer.from(privateKey, 'base64');
  if (raw.length !== SECRET_BYTES) throw new InputError(`a private key of ${raw.length} bytes`);
  const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return { publicKey: pub.subarray(pub.length - 32).toString('base64'), privateKey: raw.toString('base64') };
}

/**
 * One client's dealing: for every holder (the participants, sorted; holder i's share is at x = i + 1), the share of
 * its mask key's private half followed by the share of its self-mask seed, 64 bytes.
 */
export function dealShares(
  maskKey: AgreementKey,
  selfSeed: Uint8Array,
  holders: string[],
  t: number,
): Map<string, Buffer> {
  const s = split(Buffer.from(maskKey.privateKey, 'base64'), holders.length, t);
  const b = split(selfSeed, holders.length, t);
  return new Map(holders.map((h, i) => [h, Buffer.concat([s[i].y, b[i].y])]));
}

function sealKey(channel: AgreementKey, peerChannel: string, context: string): Buffer {
  // The channel keys are not the mask keys: revealing a dropped client's mask key opens none of its sealed shares.
  const secret = pairSecret(channel, peerChannel);
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(context), 'secmlops-secure-sum-v2 share seal', 32));
}

/** A share sealed for its holder: base64 of nonce (12), ciphertext, tag (16); `context` names sender and holder. */
export function sealShare(channel: AgreementKey, peerChannel: string, share: Buffer, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealKey(channel, peerChannel, context), nonce);
  const body = Buffer.concat([cipher.update(share), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

/** Opens a share sealed for this holder; anything altered, or sealed for another context, is refused. */
export function openShare(channel: AgreementKey, peerChannel: string, sealed: string, context: string): Buffer {
  const bytes = Buffer.from(sealed, 'base64');
  if (bytes.length !== 12 + 2 * SECRET_BYTES + 16) throw new InputError(`a sealed share of ${bytes.length} bytes`);
  const decipher = createDecipheriv('aes-256-gcm', sealKey(channel, peerChannel, context), bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  try {
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
  } catch {
    throw new InputError('a sealed share does not open: altered, or sealed for another holder or round');
  }
}

export interface Revealed {
  /** The holder's point (its index among the sharing participants + 1). */
  x: number;
  /** Per participant: its self-mask seed's share (its input arrived) or its mask key's share (it dropped). */
  shares: Record<string, { kind: 'self' | 'mask'; share: string }>;
}

export interface Recovery {
  /** The survivors' masked inputs. */
  contributions: Map<string, Uint32Array>;
  /** How many shares rebuild a secret: the threshold the shares were dealt with. */
  threshold: number;
  /** Every sharing participant's announced mask key (public half). */
  maskKeys: Map<string, string>;
  /** Every sharing participant's self-mask seed digest, as it committed to it. */
  selfCommitments: Map<string, string>;
  revealed: Revealed[];
  context: string;
}

/** The survivors' sum with every mask removed, decoded; a secret that does not match its commitment is refused. */
export function recoverSum(r: Recovery, sha256: (b: Uint8Array) => string): Float32Array {
  const survivors = [...r.contributions.keys()];
  const t = r.threshold;
  if (r.revealed.length < t) throw new InputError(`${r.revealed.length} survivors revealed shares; ${t} are needed`);
  const length = r.contributions.get(survivors[0])!.length;
  const sum = new Uint32Array(length);
  for (const c of r.contributions.values()) addMask(sum, c, 1);
  const secretOf = (id: string, kind: 'self' | 'mask') => {
    const shares = r.revealed.map((h) => {
      const s = h.shares[id];
      if (!s || s.kind !== kind) throw new InputError(`a survivor revealed no ${kind} share of ${id}`);
      return { x: h.x, y: Buffer.from(s.share, 'base64') };
    });
    return combine(shares);
  };
  for (const id of survivors) {
    const seed = secretOf(id, 'self');
    if (sha256(seed) !== r.selfCommitments.get(id))
      throw new InputError(`${id}'s self-mask seed rebuilt from the shares does not match its commitment`);
    addMask(sum, selfMask(seed, r.context, length), -1);
  }
  for (const [id, publicKey] of r.maskKeys) {
    if (r.contributions.has(id)) continue;
    const key = keyFromPrivate(secretOf(id, 'mask').toString('base64'));
    if (key.publicKey !== publicKey)
      throw new InputError(`${id}'s mask key rebuilt from the shares does not match the key it announced`);
    // Each survivor w added the pair's mask when w sorts first, else subtracted it: undo that.
    for (const w of survivors) addMask(sum, pairMask(key, r.maskKeys.get(w)!, r.context, length), w < id ? -1 : 1);
  }
  return decodeFixed(sum);
}
