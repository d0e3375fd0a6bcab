// FedAvg's arithmetic: the weighted average, how the split is dealt, and secure aggregation's masks cancelling.
import { describe, expect, test } from '@jest/globals';
import { partition } from '../../engine/federated/partition.js';
import {
  FIXED_LIMIT,
  maskedContribution,
  newAgreementKey,
  unmaskedSum,
  type AgreementKey,
} from '../../engine/federated/secure-sum.js';
import { weightedMean } from '../../engine/federated/vector.js';
import { Rng } from '../../engine/runtime/rng.js';

describe('FedAvg average', () => {
  test('equals the weighted mean computed by hand', () => {
    const a = Float32Array.from([1, -2, 0.5]);
    const b = Float32Array.from([3, 4, -1.5]);
    const c = Float32Array.from([0, 0, 10]);
    const avg = weightedMean([
      { vector: a, samples: 100 },
      { vector: b, samples: 300 },
      { vector: c, samples: 600 },
    ]);
    // (100·a + 300·b + 600·c) / 1000
    expect(Array.from(avg)).toEqual([
      Math.fround(0.1 * 1 + 0.3 * 3 + 0),
      Math.fround(0.1 * -2 + 0.3 * 4),
      Math.fround(0.1 * 0.5 + 0.3 * -1.5 + 0.6 * 10),
    ]);
  });

  test('refuses updates of different sizes', () => {
    expect(() =>
      weightedMean([
        { vector: new Float32Array(2), samples: 1 },
        { vector: new Float32Array(3), samples: 1 },
      ]),
    ).toThrow('updates of 2 and 3 parameters cannot be averaged');
  });
});

describe('partition', () => {
  const rng = new Rng(3);
  const labels = Uint8Array.from({ length: 6000 }, () => rng.int(10));

  const covers = (parts: Uint32Array[]) => {
    const all = parts.flatMap((p) => Array.from(p)).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: labels.length }, (_v, i) => i));
  };

  test('IID: near-equal parts that cover every image once, the same for the same seed', () => {
    const parts = partition(labels, 3, { kind: 'iid' }, 7);
    covers(parts);
    expect(parts.map((p) => p.length)).toEqual([2000, 2000, 2000]);
    expect(partition(labels, 3, { kind: 'iid' }, 7)).toEqual(parts);
    expect(partition(labels, 3, { kind: 'iid' }, 8)[0]).not.toEqual(parts[0]);
  });

  test('Dirichlet α = 0.5 skews the classes per client; a large α barely does', () => {
    const share = (parts: Uint32Array[]) =>
      parts.map((p) => {
        const counts = new Array<number>(10).fill(0);
        for (const i of p) counts[labels[i]]++;
        return Math.max(...counts) / p.length;
      });
    const skewed = partition(labels, 3, { kind: 'dirichlet', alpha: 0.5 }, 1);
    covers(skewed);
    // With ten balanced classes the largest class holds about 10% of an IID part.
    expect(Math.max(...share(skewed))).toBeGreaterThan(0.2);
    expect(Math.max(...share(partition(labels, 3, { kind: 'dirichlet', alpha: 1000 }, 1)))).toBeLessThan(0.13);
  });

  test('bad input is refused by name', () => {
    expect(() => partition(labels, 1, { kind: 'iid' }, 1)).toThrow('at least 2 clients, got 1');
    expect(() => partition(labels, 3, { kind: 'dirichlet', alpha: 0 }, 1)).toThrow('α must be above 0, got 0');
    expect(() => partition(labels.subarray(0, 2), 3, { kind: 'iid' }, 1)).toThrow('2 images cannot be dealt to 3');
  });
});

describe('secure aggregation', () => {
  const n = 5000;
  const rng = new Rng(11);
  const vectors = [0, 1, 2].map(() => Float32Array.from({ length: n }, () => rng.normal() * 0.3));
  const samples = [1000, 2500, 1500];
  const total = samples.reduce((a, b) => a + b, 0);
  const ids = ['client-1', 'client-2', 'client-3'];
  const keys: AgreementKey[] = ids.map(() => newAgreementKey());
  const everyone = ids.map((id, i) => ({ id, agreementKey: keys[i].publicKey }));
  const contribution = (i: number, set = everyone, context = 'round 1') =>
    maskedContribution(vectors[i], samples[i] / total, ids[i], keys[i], set, context);

  test('the masks cancel: the sum of masked contributions is the weighted mean', () => {
    const sum = unmaskedSum([0, 1, 2].map((i) => contribution(i)));
    const mean = weightedMean(vectors.map((vector, i) => ({ vector, samples: samples[i] })));
    let worst = 0;
    for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(sum[j] - mean[j]));
    // Three roundings of 2^-21 each.
    expect(worst).toBeLessThan(3 * 2 ** -20);
  });

  test('one masked contribution says nothing of its update', () => {
    const masked = unmaskedSum([contribution(1)]);
    // Decoded alone it is uniform noise over ±2048, uncorrelated with the weighted update.
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let j = 0; j < n; j++) {
      const a = masked[j];
      const b = vectors[1][j];
      dot += a * b;
      na += a * a;
      nb += b * b;
    }
    expect(Math.abs(dot / Math.sqrt(na * nb))).toBeLessThan(0.05);
    expect(Math.sqrt(na / n)).toBeGreaterThan(FIXED_LIMIT / 8);
  });

  test('a missing participant leaves the sum noise; masking again for those left cancels again', () => {
    const broken = unmaskedSum([contribution(0), contribution(1)]);
    expect(Math.abs(broken[0])).toBeGreaterThan(0);
    const rest = everyone.slice(0, 2);
    const two = samples[0] + samples[1];
    const again = unmaskedSum(
      [0, 1].map((i) => maskedContribution(vectors[i], samples[i] / two, ids[i], keys[i], rest, 'round 1, again')),
    );
    const mean = weightedMean([0, 1].map((i) => ({ vector: vectors[i], samples: samples[i] })));
    let worst = 0;
    let off = 0;
    for (let j = 0; j < n; j++) {
      worst = Math.max(worst, Math.abs(again[j] - mean[j]));
      off = Math.max(off, Math.abs(broken[j] - mean[j]));
    }
    expect(worst).toBeLessThan(2 * 2 ** -20);
    expect(off).toBeGreaterThan(100);
  });

  test('a client refuses to mask for a set it is not in, and values that could wrap', () => {
    expect(() => maskedContribution(vectors[0], 0.5, ids[0], keys[0], everyone.slice(1), 'x')).toThrow(
      'client-1 is not among the participants',
    );
    expect(() => maskedContribution(Float32Array.from([5000]), 1, ids[0], keys[0], everyone, 'x')).toThrow(
      'secure aggregation encodes values within ±1024',
    );
  });
});
