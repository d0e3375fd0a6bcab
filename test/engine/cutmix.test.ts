// CutMix (Yun et al. 2019): the box and the kept share follow the authors' code, pixels inside the box come from the
// partner image and outside from the image itself, and the soft label weighs the two labels by those pixel shares.
// Training with it learns, resumes bit for bit, and combines with adversarial training.
import { describe, expect, test } from '@jest/globals';
import { loadSplit } from '../../engine/data/fashion.js';
import { Rng } from '../../engine/runtime/rng.js';
import { createSession } from '../../engine/runtime/session.js';
import { cutBox, cutmix } from '../../engine/train/cutmix.js';
import { accuracy, train, type TrainOptions } from '../../engine/train/trainer.js';
import { deployableModel, smallCnn } from '../../engine/train/zoo.js';
import { FASHION } from '../helpers/fixture.js';

describe('CutMix boxes and labels', () => {
  test('the box has side √(1 − λ) centred where drawn, clipped at the border', () => {
    expect(cutBox(28, 28, 0.75, 14, 14)).toEqual({ y0: 7, y1: 21, x0: 7, x1: 21 });
    // At a corner half the box falls outside: the clipped box is what the label's share is computed from.
    expect(cutBox(28, 28, 0.75, 0, 27)).toEqual({ y0: 0, y1: 7, x0: 20, x1: 28 });
    expect(cutBox(28, 28, 1, 5, 5)).toEqual({ y0: 5, y1: 5, x0: 5, x1: 5 });
  });

  test('pixels inside the box come from the partner, the rest stay, and labels mix by pixel share', () => {
    const n = 6;
    const d = 28 * 28;
    // Image i is filled with the value i + 1 and labelled i.
    const x = new Float32Array(n * d).map((_, k) => Math.floor(k / d) + 1);
    const labels = [0, 1, 2, 3, 4, 5];
    const m = cutmix(x, labels, n, [1, 28, 28], 10, { alpha: 1, prob: 1 }, new Rng(4));
    const { box, partner } = m;
    const area = (box!.y1 - box!.y0) * (box!.x1 - box!.x0);
    expect(area).toBeGreaterThan(0);
    expect(m.lambda).toBeCloseTo(1 - area / d, 12);
    for (let i = 0; i < n; i++) {
      const j = partner![i];
      let fromPartner = 0;
      for (let p = 0; p < d; p++) {
        const [r, c] = [Math.floor(p / 28), p % 28];
        const inside = r >= box!.y0 && r < box!.y1 && c >= box!.x0 && c < box!.x1;
        expect(m.x[i * d + p]).toBe(inside ? j + 1 : i + 1);
        if (m.x[i * d + p] === j + 1 && j !== i) fromPartner++;
      }
      const row = Array.from(m.targets.subarray(i * 10, (i + 1) * 10));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      if (j !== i) {
        expect(row[i]).toBeCloseTo(m.lambda, 6);
        expect(row[j]).toBeCloseTo(fromPartner / d, 6);
      } else expect(row[i]).toBeCloseTo(1, 6);
    }
    // The input batch itself is left as it was.
    expect(x[0]).toBe(1);
  });

  test('a batch left unmixed keeps its images and one-hot labels', () => {
    const x = new Float32Array(2 * 784).fill(0.5);
    const m = cutmix(x, [3, 7], 2, [1, 28, 28], 10, { alpha: 1, prob: 1e-9 }, new Rng(1));
    expect(m.x).toBe(x);
    expect(m.lambda).toBe(1);
    expect(Array.from(m.targets)).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  });

  test('λ is Beta(α, α): mean and variance of 20,000 draws', () => {
    for (const a of [0.5, 1, 2]) {
      const rng = new Rng(9);
      const v = Array.from({ length: 20_000 }, () => rng.beta(a, a));
      const mean = v.reduce((s, t) => s + t, 0) / v.length;
      const variance = v.reduce((s, t) => s + (t - mean) ** 2, 0) / v.length;
      expect(mean).toBeCloseTo(0.5, 1);
      // Var Beta(a, a) = 1 / (4 (2a + 1)).
      expect(Math.abs(variance - 1 / (4 * (2 * a + 1)))).toBeLessThan(0.005);
    }
  });
});

describe('training with CutMix', () => {
  const base = async (): Promise<TrainOptions> => ({
    arch: smallCnn,
    data: await loadSplit(FASHION, 'train', { limit: 2048 }),
    epochs: 2,
    batch: 64,
    seed: 5,
    threads: 2,
    lr: 2e-3,
    schedule: 'one-cycle',
    cutmix: { alpha: 1, prob: 1 },
  });

  test('learns, and a resumed run equals a straight one bit for bit', async () => {
    const o = await base();
    const straight = await train(o);
    const test = await loadSplit(FASHION, 'test', { limit: 1000 });
    const session = await createSession(deployableModel(smallCnn, straight.deploy));
    expect(await accuracy(session, test, 10)).toBeGreaterThan(0.6);
    await session.release();
    let mid: Parameters<NonNullable<TrainOptions['onCheckpoint']>>[0] | undefined;
    await train({
      ...o,
      epochs: 2,
      checkpointEvery: 10,
      onCheckpoint: async (c) => void (c.epoch === 1 && c.step === 10 && (mid = c)),
    });
    expect(mid).toBeDefined();
    const resumed = await train({ ...o, resume: mid });
    const same = [...straight.weights].every(([k, v]) =>
      Buffer.from(v.buffer).equals(Buffer.from(resumed.weights.get(k)!.buffer)),
    );
    expect(same).toBe(true);
  }, 180_000);

  test('combines with PGD adversarial training, and refuses what is not built or out of range', async () => {
    const o = { ...(await base()), data: await loadSplit(FASHION, 'train', { limit: 256 }), epochs: 1 };
    const r = await train({ ...o, defense: { kind: 'pgd', eps: 0.1, steps: 2 } });
    expect(r.history[0].loss).toBeGreaterThan(0);
    await expect(train({ ...o, defense: { kind: 'trades', eps: 0.1 } })).rejects.toThrow(
      'cutmix: combining CutMix with TRADES is not built yet',
    );
    await expect(train({ ...o, cutmix: { alpha: 0, prob: 1 } })).rejects.toThrow(
      'cutmix: alpha must be above 0, got 0',
    );
    await expect(train({ ...o, cutmix: { alpha: 1, prob: 1.5 } })).rejects.toThrow('cutmix: prob must be in (0, 1]');
  }, 120_000);
});
