// Strict Ed25519 verification for workflow code, where every workflow starts from fresh module state.
//
// `ed25519.verify` multiplies by a base point whose wNAF table (about 1,400 point additions) is built on first use.
// A workflow verifies one or two decisions, so it paid for the whole table each time: 20-40 ms a verification in a
// fresh V8 context, 2-5 ms once warm. Here the base point is a copy without a table, so the multiplication is a
// one-shot wNAF (6-10 ms cold). The equation and every rejection are noble's strict (`zip215: false`) ones, line
// for line: canonical encodings of R and A, s below the group order, no small-order key, and the cofactored check
// [8]([s]B) = [8](R + [k]A) with k = SHA-512(R || A || M) mod L. test/policy/ed25519.test.ts compares it with
// `ed25519.verify` and with OpenSSL on valid, mutated and hostile signatures.
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';

const Point = ed25519.Point;
/** The base point as a new instance: noble keys its precomputed tables by instance, so this one has none. */
const BASE = Point.fromAffine(Point.BASE.toAffine());

/** True only when `signature` (64 bytes) over `message` verifies with the raw 32-byte `publicKey`. */
export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  const r = signature.subarray(0, 32);
  let A: InstanceType<typeof Point>;
  let R: InstanceType<typeof Point>;
  let SB: InstanceType<typeof Point>;
  try {
    A = Point.fromBytes(publicKey, false);
    R = Point.fromBytes(r, false);
    // multiplyUnsafe refuses s >= L (a malleable signature) by throwing.
    SB = BASE.multiplyUnsafe(bytesToNumberLE(signature.subarray(32)));
  } catch {
    return false;
  }
  if (A.isSmallOrder()) return false;
  const hashed = new Uint8Array(64 + message.length);
  hashed.set(r, 0);
  hashed.set(publicKey, 32);
  hashed.set(message, 64);
  const k = Point.Fn.create(bytesToNumberLE(sha512(hashed)));
  return R.add(A.multiplyUnsafe(k)).subtract(SB).clearCofactor().is0();
}
