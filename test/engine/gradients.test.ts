// Every gradient rule against central finite differences, on random shapes with strides, pads, groups and
// broadcasting, away from ReLU and max-pool kinks.
import { describe, expect, test } from '@jest/globals';
import { differentiate } from '../../engine/autodiff/differentiate.js';
import { GraphBuilder, float, tensor } from '../../engine/onnx/builder.js';
import { createSession, floatTensor, int64Tensor } from '../../engine/runtime/session.js';
import { gradcheck, randomArray, type Case, type Rng } from '../helpers/gradcheck.js';

const w = (g: GraphBuilder, rng: Rng, name: string, dims: number[], scale = 0.5) =>
  g.init(
    name,
    randomArray(
      rng,
      dims.reduce((a, b) => a * b, 1),
      scale,
    ),
    dims,
  );

const CASES: Record<string, Case> = {
  'Conv 3x3 pad 1 with bias': {
    x: [2, 2, 5, 5],
    weights: true,
    build: (g, x, r) => g.op('Conv', [x, w(g, r, 'w', [3, 2, 3, 3]), w(g, r, 'b', [3])], { pads: [1, 1, 1, 1] }),
  },
  'Conv strides 2, asymmetric pads, dilations, groups 2': {
    x: [2, 4, 7, 8],
    weights: true,
    build: (g, x, r) =>
      g.op('Conv', [x, w(g, r, 'w', [6, 2, 3, 2])], {
        strides: [2, 1],
        pads: [1, 0, 2, 1],
        dilations: [1, 2],
        group: 2,
      }),
  },
  'Conv stride 1, non-square kernel, asymmetric pads': {
    x: [2, 2, 5, 6],
    weights: true,
    build: (g, x, r) => g.op('Conv', [x, w(g, r, 'w', [3, 2, 3, 2])], { pads: [0, 1, 2, 0] }),
  },
  'Conv stride 3 leaves a remainder': {
    x: [1, 1, 8, 8],
    weights: true,
    build: (g, x, r) => g.op('Conv', [x, w(g, r, 'w', [2, 1, 3, 3])], { strides: [3, 3] }),
  },
  'Gemm transB with broadcast bias': {
    x: [3, 4],
    weights: true,
    build: (g, x, r) => g.op('Gemm', [x, w(g, r, 'w', [5, 4]), w(g, r, 'b', [5])], { transB: 1 }),
  },
  'Gemm transA, alpha, beta, row bias': {
    x: [4, 3],
    weights: true,
    build: (g, x, r) =>
      g.op('Gemm', [x, w(g, r, 'w', [4, 5]), w(g, r, 'b', [1, 5])], { transA: 1, alpha: float(0.7), beta: float(1.3) }),
  },
  'Gemm transA and transB': {
    x: [4, 3],
    weights: true,
    build: (g, x, r) => g.op('Gemm', [x, w(g, r, 'w', [5, 4])], { transA: 1, transB: 1 }),
  },
  'MatMul batched with broadcast weight': {
    x: [2, 3, 4],
    weights: true,
    build: (g, x, r) => g.op('MatMul', [x, w(g, r, 'w', [4, 5])]),
  },
  'MatMul broadcast batch dims': {
    x: [2, 1, 3, 4],
    weights: true,
    build: (g, x, r) => g.op('MatMul', [x, w(g, r, 'w', [3, 4, 2])]),
  },
  'Add, Sub, Mul, Div broadcasting per channel': {
    x: [2, 3, 2, 2],
    weights: true,
    build: (g, x, r) => {
      const a = g.op('Add', [x, w(g, r, 'a', [1, 3, 1, 1])]);
      const s = g.op('Sub', [w(g, r, 's', [3, 1, 1]), a]);
      const m = g.op('Mul', [s, w(g, r, 'm', [2])]);
      return g.op('Div', [
        m,
        g.op('Add', [g.op('Mul', [w(g, r, 'd', [1, 3, 1, 1]), w(g, r, 'd2', [1, 3, 1, 1])]), g.constF([2], [])]),
      ]);
    },
  },
  'Div by the input': {
    x: [2, 5],
    build: (g, x) =>
      g.op('Div', [g.constF([1, 2, 3, 4, 5], [5]), g.op('Add', [g.op('Mul', [x, x]), g.constF([1], [])])]),
  },
  'Relu, LeakyRelu, Sigmoid, Tanh': {
    x: [3, 6],
    build: (g, x) => {
      const relu = g.op('Relu', [g.op('Mul', [x, g.constF([-1, 1, 2, -2, 1, 1], [6])])]);
      const leaky = g.op('LeakyRelu', [g.op('Sub', [relu, g.constF([0.5], [])])], { alpha: float(0.2) });
      return g.op('Tanh', [g.op('Sigmoid', [leaky])]);
    },
  },
  'LeakyRelu on negatives': { x: [2, 4], build: (g, x) => g.op('LeakyRelu', [x], { alpha: float(0.3) }) },
  'Clip between bounds': {
    x: [2, 8],
    build: (g, x) => g.op('Clip', [g.op('Mul', [x, g.constF([2], [])]), g.constF([-0.8], []), g.constF([0.9], [])]),
  },
  'MaxPool 2x2 stride 2': {
    x: [2, 2, 4, 6],
    build: (g, x) => g.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  'MaxPool 3x3 stride 2 pad 1 (overlapping windows)': {
    x: [1, 2, 5, 5],
    build: (g, x) => g.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
  },
  'AveragePool 2x2 stride 2': {
    x: [2, 3, 4, 4],
    build: (g, x) => g.op('AveragePool', [x], { kernel_shape: [2, 2], strides: [2, 2] }),
  },
  'AveragePool 3x3 stride 1 pad 1 counting pads': {
    x: [1, 2, 4, 5],
    build: (g, x) => g.op('AveragePool', [x], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }),
  },
  GlobalAveragePool: { x: [2, 3, 3, 4], build: (g, x) => g.op('GlobalAveragePool', [x]) },
  'BatchNormalization (inference)': {
    x: [2, 3, 2, 2],
    weights: true,
    build: (g, x, r) =>
      g.op(
        'BatchNormalization',
        [x, w(g, r, 'scale', [3]), w(g, r, 'bias', [3]), g.constF([0.1, -0.2, 0.3], [3]), g.constF([0.5, 1.5, 2], [3])],
        { epsilon: float(1e-3) },
      ),
  },
  'Reshape, Transpose, Squeeze, Unsqueeze': {
    x: [2, 3, 4],
    build: (g, x) => {
      const t = g.op('Transpose', [x], { perm: [0, 2, 1] });
      const u = g.op('Unsqueeze', [t, g.constI64([1])]);
      const s = g.op('Squeeze', [u, g.constI64([1])]);
      return g.op('Reshape', [g.op('Mul', [s, g.constF([1, 2, 3], [3])]), g.constI64([0, -1])]);
    },
  },
  'Concat along channels': {
    x: [2, 2, 3],
    weights: true,
    build: (g, x, r) => g.op('Concat', [x, w(g, r, 'w', [2, 1, 3]), g.op('Mul', [x, x])], { axis: 1 }),
  },
  'Pad (constant)': {
    x: [1, 2, 3, 3],
    build: (g, x) => g.op('Mul', [g.op('Pad', [x, g.constI64([0, 0, 1, 2, 0, 0, 2, 0])]), g.constF([2], [])]),
  },
  'Softmax then scale': {
    x: [3, 5],
    build: (g, x) => g.op('Mul', [g.op('Softmax', [x], { axis: 1 }), g.constF([3], [])]),
  },
  LogSoftmax: { x: [3, 5], build: (g, x) => g.op('LogSoftmax', [x], { axis: -1 }) },
  'ReduceMean over axes (attribute, keepdims 0)': {
    x: [2, 3, 4],
    build: (g, x) => g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [2], keepdims: 0 }),
  },
  'ReduceSum over axes (input, keepdims 1)': {
    x: [2, 3, 4],
    build: (g, x) =>
      g.op('Mul', [
        g.op('ReduceSum', [g.op('Mul', [x, x]), g.constI64([1])], { keepdims: 1 }),
        g.constF([1, 2, 3, 4], [4]),
      ]),
  },
  'Identity, Dropout (inference), Constant': {
    x: [2, 4],
    build: (g, x) =>
      g.op('Add', [
        g.op('Dropout', [g.op('Identity', [x])]),
        g.op('Constant', [], { value: tensor('k', Float32Array.from([1, 2, 3, 4]), [4]) }),
      ]),
  },
  'Carlini-Wagner margin loss': { x: [4, 6], loss: 'cw-margin', build: (g, x) => g.op('Mul', [x, g.constF([3], [])]) },
  'DeepFool target-margin loss': {
    x: [4, 6],
    loss: 'target-margin',
    build: (g, x) => g.op('Mul', [x, g.constF([3], [])]),
  },
  'soft-label cross-entropy (TRADES inner maximisation)': {
    x: [4, 6],
    loss: 'soft-cross-entropy',
    build: (g, x) => g.op('Mul', [x, g.constF([2], [])]),
  },
  // Larger T scales the loss by T², beyond what float32 finite differences resolve; distill.test.ts checks T = 20
  // against the closed form instead.
  'distillation loss at T = 2, α = 0.7 (soft and hard terms)': {
    x: [4, 6],
    loss: 'distill',
    temperature: 2,
    alpha: 0.7,
    build: (g, x) => g.op('Mul', [x, g.constF([3], [])]),
  },
  // Weights feed both the clean and the adversarial rows, so a rule that ignored either branch would fail here.
  'TRADES loss through both branches': {
    x: [6, 5],
    weights: true,
    loss: 'trades',
    build: (g, x, r) => g.op('Gemm', [g.op('Tanh', [x]), w(g, r, 'tw', [5, 4]), w(g, r, 'tb', [4], 0.1)]),
  },
  'a small CNN end to end': {
    x: [2, 1, 8, 8],
    weights: true,
    build: (g, x, r) => {
      const c1 = g.op('Relu', [
        g.op('Conv', [x, w(g, r, 'c1w', [4, 1, 3, 3]), w(g, r, 'c1b', [4], 0.1)], { pads: [1, 1, 1, 1] }),
      ]);
      const p1 = g.op('MaxPool', [c1], { kernel_shape: [2, 2], strides: [2, 2] });
      const c2 = g.op('Relu', [
        g.op('Conv', [p1, w(g, r, 'c2w', [6, 4, 3, 3]), w(g, r, 'c2b', [6], 0.1)], { pads: [1, 1, 1, 1] }),
      ]);
      const p2 = g.op('MaxPool', [c2], { kernel_shape: [2, 2], strides: [2, 2] });
      return g.op('Gemm', [g.op('Flatten', [p2]), w(g, r, 'fcw', [24, 5]), w(g, r, 'fcb', [5], 0.1)]);
    },
  },
};

describe('gradient rules match central finite differences', () => {
  test.each(Object.entries(CASES))('%s', async (_name, c) => {
    const results = await gradcheck(c);
    for (const r of results)
      expect({ name: r.name, ok: r.worst < 2e-2, worst: r.worst }).toMatchObject({ name: r.name, ok: true });
    // x, and with weights every float initializer the case declared.
    expect(results.length).toBeGreaterThan(c.weights ? 1 : 0);
  });
});

describe('max-pool ties', () => {
  test('of tied maxima in tiled windows the first in row-major order takes the gradient, as PyTorch routes it', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', [1, 2, 2, 4]);
    g.output(g.op('Flatten', [g.op('MaxPool', [x], { kernel_shape: [2, 2], strides: [2, 2] })], { axis: 1 }));
    const grad = differentiate(g.build(), { wrt: ['x'] });
    const session = await createSession(grad.model, { threads: 1 });
    // Channel 0: a tie of 4 in its first window and of 2 in its second; channel 1: distinct values.
    const data = Float32Array.from([1, 1, 0, 5, 1, 1, 5, 0, 0.1, 0.9, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
    const out = await session.run({ x: floatTensor(data, [1, 2, 2, 4]), [grad.labels]: int64Tensor([1], [1]) });
    const dx = Array.from(out[grad.grads.x].data as Float32Array);
    const logits = Array.from(out[grad.logits].data as Float32Array);
    const softmax = logits.map((v) => Math.exp(v) / logits.reduce((a, b) => a + Math.exp(b), 0));
    const d = softmax.map((p, j) => p - (j === 1 ? 1 : 0));
    // Window 1's four tied 1s: the top-left one. Window 2's tied 5s at (0,3) and (1,2): (0,3) comes first.
    const expected = [d[0], 0, 0, d[1], 0, 0, 0, 0, 0, d[2], 0, 0, 0, 0, 0, d[3]];
    dx.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
    // The general path (overlapping windows, through Indices) routes ties the same way.
    const o = new GraphBuilder();
    const ox = o.input('x', [1, 1, 3, 3]);
    o.output(o.op('Flatten', [o.op('MaxPool', [ox], { kernel_shape: [2, 2], strides: [1, 1] })], { axis: 1 }));
    const og = differentiate(o.build(), { wrt: ['x'] });
    const os = await createSession(og.model, { threads: 1 });
    const flat = await os.run({
      x: floatTensor(new Float32Array(9).fill(2), [1, 1, 3, 3]),
      [og.labels]: int64Tensor([0], [1]),
    });
    const ol = Array.from(flat[og.logits].data as Float32Array);
    const op = ol
      .map((v) => Math.exp(v) / ol.reduce((a, b) => a + Math.exp(b), 0))
      .map((p, j) => p - (j === 0 ? 1 : 0));
    // Every value ties: each window's first element is its top-left, (0,0), (0,1), (1,0) and (1,1).
    const od = Array.from(flat[og.grads.x].data as Float32Array);
    [op[0], op[1], 0, op[2], op[3], 0, 0, 0, 0].forEach((v, i) => expect(od[i]).toBeCloseTo(v, 6));
    await os.release();
    await session.release();
  });
});
