// Public keys the policy pins: one per decision channel, and the release key. A pinned key decides whose
// signatures count, so it must be a real Ed25519 public key: 32 bytes that decode to a point of the prime-order
// subgroup. A small-order key (all zeros, the identity and six others) verifies signatures nobody made.
import { ed25519 } from '@noble/curves/ed25519.js';
import { decodeBase64 } from './base64.js';
import type { ParseOptions } from './parse.js';
import { Reader, join } from './reader.js';
import { CHANNELS, type Channel, type Policy } from './types.js';

export function readChannels(r: Reader, v: unknown, opts: ParseOptions): Policy['channels'] {
  if (v === undefined) return {};
  const m = r.mapping(v, 'channels', { optional: [...CHANNELS] });
  const out: Policy['channels'] = {};
  for (const [name, raw] of Object.entries(m)) {
    const path = join('channels', name);
    const c = r.mapping(raw, path, { optional: ['publicKey', 'publicKeyFile'] });
    const key = readKey(r, c, path, opts);
    if (!key) r.fail(path, 'expected publicKey (base64 of a raw Ed25519 public key) or publicKeyFile');
    out[name as Channel] = { publicKey: key };
  }
  return out;
}

export function readKey(r: Reader, m: Record<string, unknown>, path: string, opts: ParseOptions): string | undefined {
  if (m.publicKey !== undefined && m.publicKeyFile !== undefined)
    r.fail(path, 'give publicKey or publicKeyFile, not both');
  let text: unknown;
  let where = join(path, 'publicKey');
  if (m.publicKeyFile !== undefined) {
    where = join(path, 'publicKeyFile');
    const file = r.string(m.publicKeyFile, where);
    if (!opts.readKeyFile) r.fail(where, 'key files cannot be read here; give publicKey instead');
    try {
      text = opts.readKeyFile(file);
    } catch (e) {
      r.fail(
        where,
        `cannot read "${file}" (${(e as Error).message.split('\n')[0]}); run \`npx secmlops keys init\` to create the development keys`,
      );
    }
    if (typeof text !== 'string') r.fail(where, `reading "${file}" gave no text`);
  } else if (m.publicKey !== undefined) text = r.string(m.publicKey, where);
  if (typeof text !== 'string') return undefined;
  const bytes = decodeBase64(text);
  if (!bytes || bytes.length !== 32) r.fail(where, 'expected an Ed25519 public key: base64 of 32 raw bytes');
  const problem = pointProblem(bytes);
  if (problem) r.fail(where, `expected an Ed25519 public key, but ${problem}`);
  return text.trim();
}

/** Why 32 bytes are not a usable Ed25519 public key, or undefined when they are. */
export function pointProblem(bytes: Uint8Array): string | undefined {
  let point;
  try {
    // Strict RFC 8032 decoding (not ZIP-215): a non-canonical encoding of a point is refused too.
    point = ed25519.Point.fromBytes(bytes, false);
  } catch (e) {
    return `these 32 bytes are not a point on the curve (${(e as Error).message})`;
  }
  if (point.isSmallOrder())
    return 'these 32 bytes encode a small-order point (such as all zeros or the identity), which would accept forged signatures';
  if (!point.isTorsionFree())
    return 'these 32 bytes encode a point outside the prime-order subgroup, which no Ed25519 key pair produces';
  return undefined;
}
