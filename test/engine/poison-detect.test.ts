// The two detectors on activations with a known poisoned population: a class whose activations hold a separate
// cluster (what a trigger the model learned looks like from the penultimate layer), among classes that only vary.
// The recall and false-positive bars are ones a detector that flags at random, or flags the wrong side, would miss.
import { describe, expect, test } from '@jest/globals';
import { activationClustering, scoreDetection, spectralSignatures, withFeatures } from '../../engine/poison/detect.js';
import type { Matrix } from '../../engine/poison/linalg.js';
import { Rng } from '../../engine/runtime/rng.js';
import { deployableModel, initWeights, smallCnn } from '../../engine/train/zoo.js';

const CLASSES = 5;
const PER_CLASS = 400;
const DIM = 32;

/** Gaussian activations per class; in class 0, 150 extra rows shifted along a direction of their own. */
function poisonedActivations(seed: number): { acts: Matrix; labels: Uint8Array; poisoned: number[] } {
  const rng = new Rng(seed);
  const rows = CLASSES * PER_CLASS + 150;
  const data = new Float32Array(rows * DIM);
  const labels = new Uint8Array(rows);
  const poisoned: number[] = [];
  for (let r = 0; r < rows; r++) {
    const poison = r >= CLASSES * PER_CLASS;
    const c = poison ? 0 : r % CLASSES;
    labels[r] = c;
    if (poison) poisoned.push(r);
    for (let j = 0; j < DIM; j++) {
      const centre = j === c ? 4 : 0;
      const shift = poison && j === DIM - 1 ? 6 : 0;
      data[r * DIM + j] = centre + shift + rng.normal();
    }
  }
  return { acts: { data, rows, cols: DIM }, labels, poisoned };
}

describe('poison detectors', () => {
  test('activation clustering flags the separate cluster of the poisoned class, and nothing elsewhere', () => {
    const { acts, labels, poisoned } = poisonedActivations(1);
    const d = activationClustering(acts, labels, CLASSES, { components: 5 });
    const s = scoreDetection(d.flagged, poisoned, acts.rows);
    expect(s.recall).toBeGreaterThanOrEqual(0.95);
    expect(s.false_positive_rate).toBeLessThanOrEqual(0.01);
    expect(d.classes.filter((c) => c.flagged > 0).map((c) => c.class)).toEqual([0]);
  });

  test('activation clustering flags nothing when no class holds a separate population', () => {
    const { acts, labels } = poisonedActivations(2);
    const clean = { ...acts, rows: CLASSES * PER_CLASS, data: acts.data.subarray(0, CLASSES * PER_CLASS * DIM) };
    expect(activationClustering(clean, labels.subarray(0, clean.rows), CLASSES, { components: 5 }).flagged).toEqual([]);
  });

  test('spectral signatures rank the poisoned rows of a class highest, and flag 1.5 × the rate of each class', () => {
    const { acts, labels, poisoned } = poisonedActivations(3);
    // Class 0 holds 150 poisoned of 550 rows (27%).
    const d = spectralSignatures(acts, labels, CLASSES, 0.27);
    const class0 = [...labels.keys()].filter((i) => labels[i] === 0).sort((x, y) => d.scores[y] - d.scores[x]);
    const top = new Set(class0.slice(0, 150));
    // Random ranking would put about 41 there.
    expect(poisoned.filter((i) => top.has(i)).length).toBeGreaterThanOrEqual(120);
    expect(d.classes.map((c) => c.flagged)).toEqual([223, 162, 162, 162, 162]);
    expect(scoreDetection(d.flagged, poisoned, acts.rows).recall).toBeGreaterThanOrEqual(0.95);
  });

  test('the penultimate layer of a zoo model is the input of its final Gemm', () => {
    const model = deployableModel(smallCnn, initWeights(smallCnn, new Rng(1)));
    const { model: m, feature } = withFeatures(model);
    const gemm = model.graph!.node!.find((n) => n.opType === 'Gemm')!;
    expect(feature).toBe(gemm.input![0]);
    expect(m.graph!.output!.map((o) => o.name)).toEqual([model.graph!.output![0].name, feature]);
  });
});
