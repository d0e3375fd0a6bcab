// The workflow-side Ed25519 verifier against noble's strict verify and OpenSSL: the same answer on valid, mutated and
// hostile signatures (malleable s, non-canonical encodings, small-order keys, torsion in R).
import { describe, expect, test } from '@jest/globals';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { rawPublicKey } from '../../activities/keys.js';
import { decodeBase64 } from '../../policy/index.js';
import { verifyEd25519 } from '../../policy/ed25519.js';
import { verifyEd25519Native } from '../../engine/io/native-ed25519.js';

const noble = (s: Uint8Array, m: Uint8Array, p: Uint8Array) => {
  try {
    return ed25519.verify(s, m, p, { zip215: false });
  } catch {
    return false;
  }
};
const openssl = (s: Uint8Array, m: Uint8Array, p: Uint8Array) => {
  try {
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(p).toString('base64url') },
      format: 'jwk',
    });
    return verify(null, m, key, s);
  } catch {
    return false;
  }
};
const L = ed25519.Point.Fn.ORDER;
const P = 2n ** 255n - 19n;

function signed(seed: number) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const msg = Uint8Array.from({ length: seed % 97 }, (_, i) => (i * 31 + seed) & 0xff);
  return { msg, sig: new Uint8Array(sign(null, msg, privateKey)), pub: decodeBase64(rawPublicKey(publicKey))! };
}

describe('workflow-side Ed25519 verification', () => {
  test('valid signatures verify; every single-bit change of signature, key or message agrees with noble', () => {
    let checked = 0;
    for (let seed = 0; seed < 6; seed++) {
      const { msg, sig, pub } = signed(seed);
      expect(verifyEd25519(sig, msg, pub)).toBe(true);
      expect(verifyEd25519Native(sig, msg, pub)).toBe(true);
      expect(openssl(sig, msg, pub)).toBe(true);
      const flips: [Uint8Array, number][] = [
        ...Array.from({ length: 64 }, (_, i): [Uint8Array, number] => [sig, i]),
        ...Array.from({ length: 32 }, (_, i): [Uint8Array, number] => [pub, i]),
        ...Array.from({ length: Math.min(msg.length, 8) }, (_, i): [Uint8Array, number] => [msg, i]),
      ];
      for (const [target, byte] of flips) {
        const bit = 1 << ((byte + seed) % 8);
        const [s, m, p] = [sig, msg, pub].map((x) => (x === target ? x.slice() : x));
        const t = target === sig ? s : target === msg ? m : p;
        t[byte] ^= bit;
        const ours = verifyEd25519(s, m, p);
        expect([ours, byte]).toEqual([noble(s, m, p), byte]);
        expect(ours).toBe(false);
        expect(verifyEd25519Native(s, m, p)).toBe(false);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  test('s + L (the malleable twin of a valid signature) is refused, as noble and OpenSSL refuse it', () => {
    const { msg, sig, pub } = signed(5);
    const twin = sig.slice();
    twin.set(numberToBytesLE(bytesToNumberLE(sig.subarray(32)) + L, 32), 32);
    expect([verifyEd25519(twin, msg, pub), noble(twin, msg, pub), verifyEd25519Native(twin, msg, pub)]).toEqual([
      false,
      false,
      false,
    ]);
    expect(openssl(twin, msg, pub)).toBe(false);
  });

  test('a non-canonical R or key (y + p) is refused', () => {
    const { msg, sig, pub } = signed(7);
    const bump = (b: Uint8Array) => {
      const y = bytesToNumberLE(b.slice(0, 32).map((v, i) => (i === 31 ? v & 0x7f : v)));
      if (y + P >= 2n ** 255n) return undefined;
      const out = numberToBytesLE(y + P, 32);
      out[31] |= b[31] & 0x80;
      return out;
    };
    // y + p fits in 255 bits only for y < 19: build such points and check both encodings are refused.
    const small = ed25519.Point.fromBytes(numberToBytesLE(1n, 32)); // y = 1: the identity, small order
    const nc = bump(small.toBytes())!;
    expect(verifyEd25519(sig, msg, nc)).toBe(false);
    expect(noble(sig, msg, nc)).toBe(false);
    const badR = sig.slice();
    badR.set(nc, 0);
    expect(verifyEd25519(badR, msg, pub)).toBe(noble(badR, msg, pub));
    expect(verifyEd25519(badR, msg, pub)).toBe(false);
  });

  test('a small-order key with the trivial signature (R = identity, s = 0) is refused', () => {
    // With A of small order, [8](R + kA) = [8]R: R = identity and s = 0 satisfy the cofactored equation for any
    // message. Strict verification refuses small-order keys for exactly this reason.
    const identity = numberToBytesLE(1n, 32);
    const sig = new Uint8Array(64);
    sig.set(identity, 0);
    const msg = new TextEncoder().encode('anything at all');
    expect(verifyEd25519(sig, msg, identity)).toBe(false);
    expect(noble(sig, msg, identity)).toBe(false);
    expect(verifyEd25519Native(sig, msg, identity)).toBe(false);
  });

  test('torsion added to R: the cofactored equation accepts it, exactly as noble strict does', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pub = decodeBase64(rawPublicKey(publicKey))!;
    const msg = new TextEncoder().encode('torsion');
    const sig = new Uint8Array(sign(null, msg, privateKey));
    // An order-2 point, (0, -1), added to R changes the hash k, so the signature breaks; both verifiers agree.
    const T = ed25519.Point.fromBytes(numberToBytesLE(P - 1n, 32));
    const R = ed25519.Point.fromBytes(sig.subarray(0, 32)).add(T);
    const tweaked = sig.slice();
    tweaked.set(R.toBytes(), 0);
    expect(verifyEd25519(tweaked, msg, pub)).toBe(noble(tweaked, msg, pub));
    expect(verifyEd25519(tweaked, msg, pub)).toBe(false);
  });

  test('wrong lengths are refused without throwing', () => {
    const { msg, sig, pub } = signed(3);
    expect(verifyEd25519(sig.subarray(0, 63), msg, pub)).toBe(false);
    expect(verifyEd25519(sig, msg, pub.subarray(0, 31))).toBe(false);
    expect(verifyEd25519(new Uint8Array(64), msg, pub)).toBe(false);
  });
});
