// Attack properties on the committed example model and real Fashion-MNIST test images.
import { beforeAll, describe, expect, test } from '@jest/globals';
import { deepfool, fgsm, l2, pgd } from '../../engine/attacks/attacks.js';
import { runAttack } from '../../engine/attacks/run.js';
import { AttackTarget } from '../../engine/attacks/target.js';
import { loadSplit, type ImageSet } from '../../engine/data/fashion.js';
import { computeMetrics } from '../../engine/metrics/metrics.js';
import { GraphBuilder } from '../../engine/onnx/builder.js';
import { loadModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import { argmax } from '../../engine/metrics/predictions.js';
import { FASHION } from '../helpers/fixture.js';

const MODEL = 'examples/fashion-mnist/model.onnx';
const range = { min: 0, max: 1 };
let target: AttackTarget;
let data: ImageSet;
const D = 784;

beforeAll(async () => {
  target = await AttackTarget.create(await loadModel(MODEL));
  data = await loadSplit(FASHION, 'test', { limit: 64 });
});

const batch = () => ({ x: data.images.slice(), labels: data.labels, n: data.count });

function maxAbsDiff(a: Float32Array, b: Float32Array, i: number): number {
  let m = 0;
  for (let k = i * D; k < (i + 1) * D; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
}

describe('attacks', () => {
  test('FGSM and PGD (Linf) stay within eps and the valid range', async () => {
    for (const adv of [
      await fgsm(target, batch(), { eps: 0.1, range }),
      await pgd(target, batch(), { eps: 0.1, steps: 10, range, rng: new Rng(1) }),
    ]) {
      expect(Math.min(...adv)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...adv)).toBeLessThanOrEqual(1);
      for (let i = 0; i < data.count; i++) expect(maxAbsDiff(adv, data.images, i)).toBeLessThanOrEqual(0.1 + 1e-6);
    }
  });

  test('PGD-L2 stays within its L2 ball', async () => {
    const adv = await pgd(target, batch(), { eps: 1.5, steps: 10, norm: 'l2', range, rng: new Rng(2) });
    const delta = adv.map((v, k) => v - data.images[k]);
    for (let i = 0; i < data.count; i++) expect(l2(delta, i * D, D)).toBeLessThanOrEqual(1.5 + 1e-4);
    expect(Math.min(...adv)).toBeGreaterThanOrEqual(0);
  });

  test('PGD-20 is never weaker than FGSM on the same images, and the undefended model falls below 10%', async () => {
    const f = computeMetrics(await runAttack(target, data, { attack: 'fgsm', eps: 0.1 }, { range }), 10);
    const p = computeMetrics(await runAttack(target, data, { attack: 'pgd', eps: 0.1, steps: 20 }, { range }), 10);
    expect(p.robust_accuracy).toBeLessThanOrEqual(f.robust_accuracy);
    expect(p.robust_accuracy).toBeLessThan(0.1);
    expect(p.clean_accuracy).toBe(f.clean_accuracy);
    expect(p.clean_accuracy).toBeGreaterThan(0.85);
  });

  test('targeted PGD moves inputs to the target class', async () => {
    const targets = Array.from(data.labels, (y) => (y + 1) % 10);
    const adv = await pgd(target, batch(), { eps: 0.2, steps: 20, targets, range, rng: new Rng(3) });
    const logits = await target.logits(adv, data.count);
    const hits = targets.filter((t, i) => argmax(logits, i * 10, 10) === t).length;
    expect(hits / data.count).toBeGreaterThan(0.8);
  });

  test("DeepFool's perturbation flips the label and is smaller than FGSM's at the flip", async () => {
    const adv = await deepfool(target, batch(), { range });
    const [clean, attacked] = [await target.logits(data.images, data.count), await target.logits(adv, data.count)];
    const dfNorms: number[] = [];
    const fgsmNorms: number[] = [];
    const epsGrid = [0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2];
    const fgsmAt = await Promise.all(
      epsGrid.map(async (eps) => ({ eps, adv: await fgsm(target, batch(), { eps, range }) })),
    );
    const fgsmLogits = await Promise.all(fgsmAt.map((f) => target.logits(f.adv, data.count)));
    for (let i = 0; i < data.count; i++) {
      const orig = argmax(clean, i * 10, 10);
      expect(argmax(attacked, i * 10, 10)).not.toBe(orig);
      const delta = adv.map((v, k) => v - data.images[k]);
      dfNorms.push(l2(delta, i * D, D));
      const j = fgsmLogits.findIndex((l) => argmax(l, i * 10, 10) !== orig);
      if (j >= 0)
        fgsmNorms.push(
          l2(
            fgsmAt[j].adv.map((v, k) => v - data.images[k]),
            i * D,
            D,
          ),
        );
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];
    expect(median(dfNorms)).toBeLessThan(median(fgsmNorms));
  });

  test('the same seed gives the same results', async () => {
    const a = await pgd(target, batch(), { eps: 0.1, steps: 3, range, rng: new Rng(7) });
    const b = await pgd(target, batch(), { eps: 0.1, steps: 3, range, rng: new Rng(7) });
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  test('Square Attack needs forward passes only: it attacks a model with an op that has no gradient rule', async () => {
    // The example's logits through Softsign (no gradient rule; monotonic, so predictions are unchanged).
    const model = await loadModel(MODEL);
    const g = new GraphBuilder('x_');
    g.nodes.push(...model.graph!.node!);
    const out = g.op('Softsign', ['logits'], {}, ['squashed']);
    const wrapped = {
      ...model,
      graph: { ...model.graph, node: g.nodes, output: [{ ...model.graph!.output![0], name: out }] },
    };
    const t = await AttackTarget.create(wrapped);
    await expect(t.gradient(data.images, data.count, data.labels)).rejects.toThrow(
      /no gradient rule for Softsign node/,
    );
    const small = { ...data, count: 32, images: data.images.subarray(0, 32 * D), labels: data.labels.subarray(0, 32) };
    const m = computeMetrics(await runAttack(t, small, { attack: 'square', eps: 0.1, queries: 300 }, { range }), 10);
    expect(m.clean_accuracy).toBeGreaterThan(0.8);
    expect(m.robust_accuracy).toBeLessThan(m.clean_accuracy / 2);
  });
});
