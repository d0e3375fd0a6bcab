// Feature squeezing: the squeezers against values from scipy and numpy (as the paper's EvadeML-Zoo code computes
// them), the calibration rule, and detection on the example model with real Fashion-MNIST and real PGD.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { pgd } from '../../engine/attacks/attacks.js';
import { AttackTarget } from '../../engine/attacks/target.js';
import { loadSplit, sliceSet, type ImageSet } from '../../engine/data/fashion.js';
import {
  FASHION_SQUEEZE,
  calibrateThreshold,
  medianSmooth,
  reduceBitDepth,
  squeezeScores,
  type RunLogits,
} from '../../engine/detect/squeeze.js';
import { loadModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import { FASHION } from '../helpers/fixture.js';

const SHAPE = [1, 28, 28];
const near = (a: Float32Array, b: number[]) => expect(Array.from(a).map((v) => +v.toFixed(6))).toEqual(b);

describe('squeezers', () => {
  test('bit depth: rint(u·(2^bits − 1)) / (2^bits − 1) on the range mapped to [0, 1], halves to even', () => {
    near(reduceBitDepth(Float32Array.of(0, 0.2, 0.5, 0.51, 1), 1, [0, 1]), [0, 0, 0, 1, 1]);
    // 1 bit: 0.5 is half a step and goes to the even level 0. 2 bits (steps of 1/3): 0.5 is 1.5 steps, so 2.
    near(
      reduceBitDepth(Float32Array.of(0.5, 0.3, 0.9, 0.1), 2, [0, 1]).map((v) => v * 3),
      [2, 1, 3, 0],
    );
    near(reduceBitDepth(Float32Array.of(-1, -0.1, 0.4, 1), 1, [-1, 1]), [-1, -1, 1, 1]);
    // Outside the range: the nearest end level.
    near(reduceBitDepth(Float32Array.of(-0.2, 1.3), 3, [0, 1]), [0, 1]);
  });

  test('2×2 median matches scipy.ndimage.median_filter(size=2, mode="reflect")', () => {
    // Expected from scipy 1.17. The window at (i, j) covers rows i−1..i and columns j−1..j; at (0, 0) reflection
    // repeats the corner, so all four are 1 (zero padding would give 0, a window of offsets 0..1 would give 5);
    // at (1, 1) the window {1, 5, 7, 3} gives the third smallest, 5 (the lower middle would be 3).
    const x = Float32Array.of(1, 5, 2, 7, 3, 9, 4, 8, 6);
    expect(Array.from(medianSmooth(x, [1, 3, 3], 2))).toEqual([1, 5, 5, 7, 5, 5, 7, 7, 8]);
    // Two channels and two images are filtered separately: the same plane four times gives the same answer.
    const four = Float32Array.from({ length: 36 }, (_, k) => x[k % 9]);
    expect(Array.from(medianSmooth(four, [2, 3, 3], 2))).toEqual(Array(4).fill([1, 5, 5, 7, 5, 5, 7, 7, 8]).flat());
    expect(Array.from(medianSmooth(x, [1, 3, 3], 1))).toEqual(Array.from(x));
  });

  test('3×3 median on a 2×4 plane matches scipy (reflection across both edges)', () => {
    const x = Float32Array.of(4, 0, 9, 2, 7, 1, 3, 8);
    expect(Array.from(medianSmooth(x, [2, 4], 3))).toEqual([4, 4, 2, 3, 4, 3, 3, 8]);
  });

  test('arguments are checked', () => {
    const x = new Float32Array(8);
    expect(() => reduceBitDepth(x, 0, [0, 1])).toThrow(/bits must be an integer from 1 to 8/);
    expect(() => reduceBitDepth(x, 2.5, [0, 1])).toThrow(/bits/);
    expect(() => reduceBitDepth(x, 2, [1, 0])).toThrow(/min < max/);
    expect(() => medianSmooth(x, [1, 2, 4], 6)).toThrow(/median must be an integer from 1 to 5/);
    expect(() => medianSmooth(x, [3, 3], 2)).toThrow(/do not split/);
    const run: RunLogits = (_x, n) => Promise.resolve(new Float32Array(n * 10));
    return Promise.all([
      expect(squeezeScores(run, x, 2, [1, 2, 3], { bits: 2, median: 2 }, [0, 1])).rejects.toThrow(
        /holds 6 values: 2 inputs need 12, got 8/,
      ),
      expect(squeezeScores(run, x, 1, [1, 2, 4], { bits: 9, median: 2 }, [0, 1])).rejects.toThrow(/bits/),
      expect(squeezeScores(run, x, 1, [1, 2, 4], { bits: 2, median: 0 }, [0, 1])).rejects.toThrow(/median/),
    ]);
  });
});

describe('calibrateThreshold', () => {
  test('at most fpr of the clean scores lie strictly above the threshold, and it is the smallest such', () => {
    const scores = Float32Array.from({ length: 100 }, (_, i) => ((i * 37) % 100) / 100); // 0.00 … 0.99, shuffled
    const t = calibrateThreshold(scores, 0.05);
    expect(t).toBeCloseTo(0.94, 6);
    expect(scores.filter((s) => s > t).length).toBe(5);
    expect(scores.filter((s) => s > t - 0.005).length).toBe(6); // any lower threshold flags 6
    // 0.29 · 100 is 28.999999999999996 in floating point: still 29 allowed above.
    expect(scores.filter((s) => s > calibrateThreshold(scores, 0.29)).length).toBe(29);
    // Ties at the threshold are not flagged: the realised rate may fall below fpr, never above it.
    const tied = Float32Array.from({ length: 100 }, (_, i) => (i < 90 ? 0 : 1));
    expect(calibrateThreshold(tied, 0.05)).toBe(1);
    expect(calibrateThreshold(Float32Array.of(3), 0.5)).toBe(3);
    expect(() => calibrateThreshold(scores, 0)).toThrow(/fpr must be in \(0, 1\)/);
    expect(() => calibrateThreshold(scores, 1)).toThrow(/fpr/);
    expect(() => calibrateThreshold(new Float32Array(0), 0.05)).toThrow(/no clean scores/);
  });
});

describe('detection on the example model', () => {
  let target: AttackTarget;
  let testSet: ImageSet;
  let run: RunLogits;
  beforeAll(async () => {
    target = await AttackTarget.create(await loadModel('examples/fashion-mnist/model.onnx'));
    testSet = await loadSplit(FASHION, 'test');
    run = (x, n) => target.logits(x, n);
  });
  const rate = (scores: Float32Array, t: number) => scores.filter((s) => s > t).length / scores.length;

  test('calibrated at 5% on 1000 clean images: ≤ 10% of other clean images flagged, PGD flagged far more', async () => {
    const score = (s: ImageSet | Float32Array, n: number) =>
      squeezeScores(run, s instanceof Float32Array ? s : s.images, n, SHAPE, FASHION_SQUEEZE, [0, 1]);
    const threshold = calibrateThreshold(await score(sliceSet(testSet, 9000, 10000), 1000), 0.05);
    const clean = rate(await score(sliceSet(testSet, 0, 500), 500), threshold);
    const victims = sliceSet(testSet, 500, 700);
    const b = { x: victims.images.slice(), labels: victims.labels, n: 200 };
    const adv = await pgd(target, b, { eps: 0.1, steps: 20, range: { min: 0, max: 1 }, rng: new Rng(1) });
    const attacked = rate(await score(adv, 200), threshold);
    // Measured: clean 4.0%, PGD 35.5% (threshold 0.676). A detector that compared an input with itself, or
    // had an infinite threshold, flags nothing; one that flagged everything fails the clean bound.
    expect(threshold).toBeGreaterThan(0);
    expect(clean).toBeLessThanOrEqual(0.1);
    expect(attacked).toBeGreaterThanOrEqual(0.25);
    expect(attacked).toBeGreaterThan(3 * clean);
  });
});
