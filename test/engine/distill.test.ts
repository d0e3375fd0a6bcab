// The distillation loss (Hinton et al. 2015) and its gradient against the closed form, in float64 by hand, at
// temperatures where float32 finite differences cannot resolve it (the loss grows with T²).
import { describe, expect, test } from '@jest/globals';
import { differentiate } from '../../engine/autodiff/differentiate.js';
import { GraphBuilder } from '../../engine/onnx/builder.js';
import { createSession, floatTensor, int64Tensor } from '../../engine/runtime/session.js';
import { loadSplit } from '../../engine/data/fashion.js';
import { accuracy, train, type TrainOptions } from '../../engine/train/trainer.js';
import { deployableModel, mlp, smallCnn } from '../../engine/train/zoo.js';
import { FASHION } from '../helpers/fixture.js';

const softmax = (v: number[]) => {
  const m = Math.max(...v);
  const e = v.map((a) => Math.exp(a - m));
  const t = e.reduce((a, b) => a + b, 0);
  return e.map((a) => a / t);
};

describe('the distillation loss', () => {
  test.each([
    [1, 1],
    [4, 0.7],
    [20, 1],
    [20, 0],
  ])('at T = %s, α = %s it and its gradient are the closed form', async (T, alpha) => {
    const g = new GraphBuilder();
    const x = g.input('x', [2, 4]);
    g.output(g.op('Identity', [x]));
    const gm = differentiate(g.build({ opset: 17 }), { wrt: ['x'], loss: 'distill', temperature: T, alpha });
    const session = await createSession(gm.model, { threads: 1 });
    const z = [
      [0.5, -1.2, 2, 0.1],
      [3, 0.2, -0.7, 1.1],
    ];
    const p = [
      [0.1, 0.2, 0.6, 0.1],
      [0.7, 0.1, 0.1, 0.1],
    ];
    const y = [2, 3];
    const out = await session.run({
      x: floatTensor(Float32Array.from(z.flat()), [2, 4]),
      [gm.labels]: int64Tensor(y, [2]),
      [gm.targets!]: floatTensor(Float32Array.from(p.flat()), [2, 4]),
    });
    let loss = 0;
    const grad: number[] = [];
    z.forEach((row, i) => {
      const q = softmax(row.map((v) => v / T));
      const s = softmax(row);
      loss +=
        (alpha * T * T * -p[i].reduce((a, pk, k) => a + pk * Math.log(q[k]), 0) - (1 - alpha) * Math.log(s[y[i]])) / 2;
      row.forEach((_, k) =>
        grad.push((alpha * T * (q[k] - p[i][k]) + (1 - alpha) * (s[k] - (k === y[i] ? 1 : 0))) / 2),
      );
    });
    expect((out[gm.loss].data as Float32Array)[0]).toBeCloseTo(loss, 3);
    Array.from(out[gm.grads.x].data as Float32Array).forEach((v, k) => expect(v).toBeCloseTo(grad[k], 5));
  });
});

describe('training by distillation', () => {
  const opts = async (): Promise<TrainOptions> => ({
    arch: smallCnn,
    data: await loadSplit(FASHION, 'train', { limit: 4096 }),
    epochs: 2,
    batch: 64,
    seed: 2,
    threads: 2,
    lr: 2e-3,
    schedule: 'one-cycle',
  });
  const deployed = async (weights: Map<string, Float32Array>, arch = smallCnn) => {
    const session = await createSession(deployableModel(arch, weights));
    const test = await loadSplit(FASHION, 'test', { limit: 1000 });
    const acc = await accuracy(session, test, 10);
    // The mean top probability at T = 1: defensive distillation saturates the deployed softmax.
    const out = await session.run({
      [session.inputNames[0]]: floatTensor(test.images.subarray(0, 200 * 784), [200, 1, 28, 28]),
    });
    const z = out[session.outputNames[0]].data as Float32Array;
    let top = 0;
    for (let i = 0; i < 200; i++) top += Math.max(...softmax(Array.from(z.subarray(i * 10, (i + 1) * 10))));
    await session.release();
    return { acc, top: top / 200 };
  };

  test('a student learns from its teacher; defensive distillation deploys a saturated softmax at T = 1', async () => {
    const o = await opts();
    const plain = await train(o);
    const teacher = deployableModel(smallCnn, plain.deploy);
    const student = await train({ ...o, arch: mlp, distill: { teacher, temperature: 4, alpha: 0.9 } });
    expect((await deployed(student.deploy, mlp)).acc).toBeGreaterThan(0.7);

    // Papernot et al.: a network trained at T = 20, then a student trained at T = 20 on its soft labels.
    const hot = await train({ ...o, distill: { temperature: 20, alpha: 1 } });
    const defended = await train({
      ...o,
      distill: { teacher: deployableModel(smallCnn, hot.deploy), temperature: 20, alpha: 1 },
    });
    const d = await deployed(defended.deploy);
    const p = await deployed(plain.deploy);
    expect(d.acc).toBeGreaterThan(0.6);
    expect(d.top).toBeGreaterThan(0.95);
    expect(d.top).toBeGreaterThan(p.top);
  }, 240_000);

  test('refuses what is out of range or not built', async () => {
    const o = { ...(await opts()), data: await loadSplit(FASHION, 'train', { limit: 128 }), epochs: 1 };
    await expect(train({ ...o, distill: { temperature: 0, alpha: 1 } })).rejects.toThrow(
      'distill: the temperature must be above 0, got 0',
    );
    await expect(train({ ...o, distill: { temperature: 2, alpha: 0.5 } })).rejects.toThrow(
      'distill: without a teacher the network trains at temperature T alone: alpha must be 1',
    );
    await expect(train({ ...o, distill: { temperature: 2, alpha: 1 }, cutmix: { alpha: 1, prob: 1 } })).rejects.toThrow(
      'distill: combining distillation with CutMix is not built yet',
    );
  }, 60_000);
});
