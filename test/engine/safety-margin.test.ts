// The full policy's decision margin for a safety-critical class: calibrated as the largest logit offset within an
// accuracy budget, and baked into the model as an Add after its logits, so attacks differentiate through it.
import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fgsm } from '../../engine/attacks/attacks.js';
import { AttackTarget } from '../../engine/attacks/target.js';
import { loadPair } from '../../engine/data/fashion.js';
import { experimentJob } from '../../engine/jobs/experiment.js';
import { calibrateMargin, withMargin } from '../../engine/metrics/safety-margin.js';
import { parseModel } from '../../engine/onnx/model.js';
import { parseExperiment } from '../../experiment/spec.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const MODEL = 'examples/fashion-mnist/model.onnx';
const test10k = {
  images: join(FASHION, 't10k-images-idx3-ubyte.gz'),
  labels: join(FASHION, 't10k-labels-idx1-ubyte.gz'),
};

describe('safety margin', () => {
  test('calibration takes the largest offset on the 0.05 grid within the accuracy budget', () => {
    // Three images of classes 0, 1, 2 (class 2 safety-critical), its logit 0.3 and 1.0 below the winner on two.
    const logits = Float32Array.from([1, 0, 0.7, 0, 1, 0, 0, 0, 1]);
    const labels = [0, 1, 2];
    // Any offset above 0.3 turns image 0 into a false alarm (accuracy 3/3 → 2/3).
    expect(calibrateMargin(logits, labels, 3, 2, 0)).toEqual({ margin: 0.3, accuracyBefore: 1, accuracyAfter: 1 });
    const loose = calibrateMargin(logits, labels, 3, 2, 0.34);
    // Up to 1.0, where class 2 ties image 1's winner (a tie goes to the first class), one false alarm is the cost.
    expect(loose.margin).toBe(1);
    expect(loose.accuracyAfter).toBeCloseTo(2 / 3);
  });

  test('the margin is part of the model: its logits shift, and FGSM differentiates through it', async () => {
    const model = parseModel(await readFile(MODEL), MODEL);
    const data = await loadPair(test10k, 10, 64);
    const plain = await AttackTarget.create(model);
    const shifted = await AttackTarget.create(withMargin(model, 10, 6, 1.25));
    const [a, b] = [await plain.logits(data.images, 64), await shifted.logits(data.images, 64)];
    for (let i = 0; i < a.length; i++) expect(b[i]).toBeCloseTo(a[i] + (i % 10 === 6 ? 1.25 : 0), 4);
    const batch = { x: data.images, labels: data.labels, n: 64 };
    const adv = await fgsm(shifted, batch, { eps: 0.1, range: { min: 0, max: 1 } });
    expect(adv.some((v, i) => Math.abs(v - data.images[i]) > 0.09)).toBe(true);
  });

  test("the experiment's full-policy cell calibrates on images it does not attack and reports the false alarms", async () => {
    const bytes = await readFile(MODEL);
    const r = await experimentJob(
      {
        kind: 'experiment',
        modelPath: MODEL,
        modelSha256: createHash('sha256').update(bytes).digest('hex'),
        ...test10k,
        classes: 10,
        limit: 300,
        range: [0, 1],
        seed: 1,
        attack: 'fgsm',
        eps: 0.05,
        safetyCritical: 6,
        margin: { maxAccuracyDrop: 0.01, calibration: { ...test10k, classes: 10, from: 5000, count: 1000 } },
      },
      () => {},
    );
    expect(r.margin!.value).toBeGreaterThan(0);
    expect(r.margin!.accuracyBefore - r.margin!.accuracyAfter).toBeLessThanOrEqual(0.01 + 1e-9);
    expect(r.safetyCritical.falseAlarmRate).toBeGreaterThan(0);
    expect(r.safetyCritical.falseAlarmRate).toBeLessThan(0.2);
  }, 120_000);

  test('calibration images must not overlap the evaluated ones', () => {
    const yaml = (extra: string) =>
      `version: 1\nname: g\ndata: ${FASHION}\ndefenses: [none, full]\nattacks: [fgsm]\ntest: { limit: 2000 }\n${extra}`;
    expect(parseExperiment(yaml('safetyMargin: { maxAccuracyDrop: 0.006 }'), 'g.yaml').safetyMargin).toEqual({
      maxAccuracyDrop: 0.006,
      from: 5000,
      count: 5000,
    });
    expect(() => parseExperiment(yaml('safetyMargin: { maxAccuracyDrop: 0.01, from: 1000 }'), 'g.yaml')).toThrow(
      'safetyMargin.from: the calibration images must follow the 2000 evaluated ones',
    );
    expect(() => parseExperiment(yaml('safetyMargin: { maxAccuracyDrop: 0.3 }'), 'g.yaml')).toThrow(
      'safetyMargin.maxAccuracyDrop',
    );
    const at = (v: string) => parseExperiment(yaml(`adversarialTraining: { kind: pgd, minClean: ${v} }`), 'g.yaml');
    expect(at('0.87').adversarialTraining.minClean).toBe(0.87);
    expect(() => at('87')).toThrow('adversarialTraining.minClean');
    expect(() => at('0')).toThrow('adversarialTraining.minClean');
    const longer = parseExperiment(yaml('adversarialTraining: { kind: pgd, epochs: 8 }'), 'g.yaml');
    expect(longer.adversarialTraining.epochs).toBe(8);
    expect(
      parseExperiment(yaml('adversarialTraining: { epochs: 8 }'), 'g.yaml', { quick: true }).adversarialTraining.epochs,
    ).toBeUndefined();
    expect(() => parseExperiment(yaml('adversarialTraining: { epochs: 0 }'), 'g.yaml')).toThrow(
      'adversarialTraining.epochs',
    );
  });
});
