// Shamir's secret sharing (1979) over GF(2^8), byte by byte: a secret is the constant term of a random polynomial of
// degree t − 1 per byte; share x is the polynomial's value at x. Any t shares give the secret back by Lagrange
// interpolation at 0; fewer say nothing about it. Secure aggregation shares each client's mask keys this way, so the
// round can be completed when the client drops after masking.
import { randomBytes } from 'node:crypto';

// Log and antilog tables of GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 and generator 3.
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let v = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = v;
    LOG[v] = i;
    v ^= (v << 1) ^ (v & 0x80 ? 0x11b : 0); // v·3 = v·2 ⊕ v
    v &= 0xff;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255];
}

const mul = (a: number, b: number) => (a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]);
const div = (a: number, b: number) => (a === 0 ? 0 : EXP[LOG[a] + 255 - LOG[b]]);

export interface Share {
  /** The share's point, 1..255 (0 would be the secret itself). */
  x: number;
  y: Buffer;
}

/** n shares of `secret`, any `threshold` of which recover it; share i is at x = i + 1. */
export function split(secret: Uint8Array, n: number, threshold: number): Share[] {
  if (!(Number.isInteger(n) && n >= 1 && n <= 255)) throw new Error(`${n} shares: between 1 and 255 can be made`);
  if (!(Number.isInteger(threshold) && threshold >= 1 && threshold <= n))
    throw new Error(`a threshold of ${threshold} for ${n} shares`);
  const coefficients = randomBytes(secret.length * (threshold - 1));
  return Array.from({ length: n }, (_v, i) => {
    const x = i + 1;
    const y = Buffer.alloc(secret.length);
    for (let b = 0; b < secret.length; b++) {
      // Horner's rule from the highest coefficient down to the secret.
      let acc = 0;
      for (let k = threshold - 2; k >= 0; k--) acc = mul(acc, x) ^ coefficients[b * (threshold - 1) + k];
      y[b] = mul(acc, x) ^ secret[b];
    }
    return { x, y };
  });
}

/** The secret from shares at distinct points (Lagrange at 0); with fewer than the threshold, a wrong value. */
export function combine(shares: Share[]): Buffer {
  if (shares.length === 0) throw new Error('no shares to combine');
  const length = shares[0].y.length;
  const xs = new Set<number>();
  for (const s of shares) {
    if (!(Number.isInteger(s.x) && s.x >= 1 && s.x <= 255)) throw new Error(`a share at x = ${s.x}`);
    if (xs.has(s.x)) throw new Error(`two shares at x = ${s.x}`);
    if (s.y.length !== length) throw new Error(`shares of ${length} and ${s.y.length} bytes`);
    xs.add(s.x);
  }
  const out = Buffer.alloc(length);
  for (const [i, si] of shares.entries()) {
    // The Lagrange basis polynomial of point i at 0: Π_{j≠i} x_j / (x_j − x_i); subtraction is ⊕ here.
    let basis = 1;
    for (const [j, sj] of shares.entries()) if (j !== i) basis = mul(basis, div(sj.x, sj.x ^ si.x));
    for (let b = 0; b < length; b++) out[b] ^= mul(basis, si.y[b]);
  }
  return out;
}
