// DP-FedAvg's arithmetic: a change clipped to its norm bound, the seeded Gaussian noise, and the noisy average
// base + (Σ clipped changes + σ·C·noise) / K computed by hand.
import { describe, expect, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { clippedDelta, gaussian, l2Norm, noisyAverage } from '../../engine/federated/dp-fedavg.js';

describe('clipping', () => {
  test('a long change is scaled to the bound, keeping its direction', () => {
    const base = Float32Array.from([1, 1, 1]);
    const weights = Float32Array.from([4, 5, 1]); // change (3, 4, 0), norm 5
    const c = clippedDelta(weights, base, 1);
    expect(c.norm).toBeCloseTo(5, 6);
    expect(c.clipped).toBe(true);
    expect(l2Norm(c.delta)).toBeLessThanOrEqual(1);
    expect(l2Norm(c.delta)).toBeGreaterThan(0.9999);
    expect(c.delta[0] / c.delta[1]).toBeCloseTo(0.75, 6);
    expect(c.delta[2]).toBe(0);
  });

  test('a short change is left as it is', () => {
    const c = clippedDelta(Float32Array.from([0.5, 0]), Float32Array.from([0, 0]), 1);
    expect(c.clipped).toBe(false);
    expect(Array.from(c.delta)).toEqual([0.5, 0]);
  });

  test('a change of another size is refused', () => {
    expect(() => clippedDelta(new Float32Array(2), new Float32Array(3), 1)).toThrow('a change of 2 parameters');
  });
});

describe('noise', () => {
  test('standard normal: mean 0, variance 1, tails as a normal has them; the same seed gives the same draw', () => {
    const seed = randomBytes(32);
    const n = 200_001;
    const z = gaussian(seed, n);
    let mean = 0;
    let sq = 0;
    let beyond2 = 0;
    for (const v of z) {
      mean += v / n;
      sq += (v * v) / n;
      if (Math.abs(v) > 2) beyond2++;
    }
    // Standard errors: 1/√n ≈ 0.0022 for the mean, √(2/n) ≈ 0.0032 for the variance.
    expect(Math.abs(mean)).toBeLessThan(0.012);
    expect(Math.abs(sq - 1)).toBeLessThan(0.016);
    expect(beyond2 / n).toBeGreaterThan(0.043);
    expect(beyond2 / n).toBeLessThan(0.048);
    expect(Array.from(gaussian(seed, 5))).toEqual(Array.from(z.subarray(0, 5)));
    expect(gaussian(randomBytes(32), 5)[0]).not.toBe(z[0]);
  });

  test('a seed of another length is refused', () => {
    expect(() => gaussian(new Uint8Array(16), 4)).toThrow('the noise seed has 16 bytes, expected 32');
  });
});

describe('noisy average', () => {
  const seed = randomBytes(32);
  const base = Float32Array.from([1, 2, 3, 4]);
  const round = { clip: 0.5, noiseMultiplier: 2, clients: 4, seed };

  test('base + (sum + σC·z) / K', () => {
    const sum = Float32Array.from([0.4, -0.2, 0, 1]);
    const z = gaussian(seed, 4);
    const out = noisyAverage(base, sum, round, false);
    for (let i = 0; i < 4; i++) expect(out[i]).toBeCloseTo(base[i] + (sum[i] + 2 * 0.5 * z[i]) / 4, 6);
  });

  test('a sum already divided by K (as secure aggregation delivers it) is not divided again', () => {
    const sum = Float32Array.from([0.1, -0.05, 0, 0.25]);
    const z = gaussian(seed, 4);
    const out = noisyAverage(base, sum, round, true);
    for (let i = 0; i < 4; i++) expect(out[i]).toBeCloseTo(base[i] + sum[i] + (2 * 0.5 * z[i]) / 4, 6);
  });
});
