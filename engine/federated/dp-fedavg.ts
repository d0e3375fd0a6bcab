// DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018): client-level differential privacy for federated averaging. Each
// client's change to the global model is clipped to L2 norm C; the server sums the clipped changes, adds Gaussian
// noise of standard deviation σ·C to the sum, and divides by the fixed number of clients K (not by how many
// answered, which would make one client's weight depend on the others). Adding or removing one client's data moves
// the sum by at most C, so each round is the Gaussian mechanism with noise multiplier σ, and the rounds compose
// under the Rényi-DP accountant (engine/privacy/rdp.ts, sample rate 1: every client is asked every round).
import { createCipheriv } from 'node:crypto';
import { FRACTION_BITS } from './secure-sum.js';

/** ‖v‖₂ accumulated in float64. */
export function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** The client's change w − base, scaled down to norm `clip` when it is longer. */
export function clippedDelta(
  weights: Float32Array,
  base: Float32Array,
  clip: number,
): { delta: Float32Array; norm: number; clipped: boolean } {
  if (weights.length !== base.length)
    throw new Error(`a change of ${weights.length} parameters from a base of ${base.length}`);
  const delta = new Float32Array(weights.length);
  for (let i = 0; i < delta.length; i++) delta[i] = weights[i] - base[i];
  const norm = l2Norm(delta);
  const clipped = norm > clip;
  if (clipped) {
    // float32 rounding may leave the scaled vector a hair above the bound: scale by slightly less.
    const scale = (clip / norm) * (1 - 1e-6);
    for (let i = 0; i < delta.length; i++) delta[i] *= scale;
  }
  return { delta, norm, clipped };
}

/**
 * n standard normal values drawn from a 32-byte seed: AES-256-CTR as the uniform source, Box–Muller to normal. The
 * seed is secret and random (the server keeps one per round, so a retried aggregation adds the same noise rather
 * than publishing a second draw).
 */
export function gaussian(seed: Uint8Array, n: number): Float64Array {
  if (seed.length !== 32) throw new Error(`the noise seed has ${seed.length} bytes, expected 32`);
  const pairs = Math.ceil(n / 2);
  const cipher = createCipheriv('aes-256-ctr', seed, Buffer.alloc(16));
  const bytes = Buffer.concat([cipher.update(Buffer.alloc(pairs * 16)), cipher.final()]);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, pairs * 4);
  const out = new Float64Array(n);
  // 53 random bits k, then (k + ½) / 2^53: strictly inside (0, 1), so the logarithm below is finite.
  const unit = (hi: number, lo: number) => ((hi >>> 5) * 2 ** 26 + (lo >>> 6) + 0.5) / 2 ** 53;
  for (let k = 0; k < pairs; k++) {
    const u1 = unit(words[4 * k], words[4 * k + 1]);
    const u2 = unit(words[4 * k + 2], words[4 * k + 3]);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[2 * k] = r * Math.cos(2 * Math.PI * u2);
    if (2 * k + 1 < n) out[2 * k + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export interface DpRound {
  clip: number;
  noiseMultiplier: number;
  /** K, the number of clients in the federation: the fixed denominator. */
  clients: number;
  seed: Uint8Array;
}

/**
 * The new global model: base + (Σ clipped changes + N(0, (σC)²)) / K. `sum` is the sum of the clipped changes
 * (already divided by K when `scaled`, as secure aggregation delivers it).
 */
export function noisyAverage(base: Float32Array, sum: Float32Array, round: DpRound, scaled: boolean): Float32Array {
  if (sum.length !== base.length) throw new Error(`a sum of ${sum.length} parameters for a base of ${base.length}`);
  const noise = gaussian(round.seed, base.length);
  const std = round.noiseMultiplier * round.clip;
  const k = round.clients;
  const out = new Float32Array(base.length);
  for (let i = 0; i < out.length; i++) out[i] = base[i] + (scaled ? sum[i] : sum[i] / k) + (std * noise[i]) / k;
  return out;
}

/**
 * The bound a client clips to when its change is masked: secure aggregation rounds each of the d values of change/K
 * to a step of 2^-FRACTION_BITS (an error of at most half a step), so one client's share of the undivided sum can
 * exceed its clipped norm by K·√d·2^-(FRACTION_BITS+1). Clipping that much tighter keeps the sensitivity in clip.
 */
export function maskedClip(clip: number, clients: number, parameters: number): number {
  const slack = clients * Math.sqrt(parameters) * 2 ** -(FRACTION_BITS + 1);
  if (!(clip > 2 * slack)) throw new Error(`clip ${clip} is too small for fixed-point masking (slack ${slack})`);
  return clip - slack;
}
