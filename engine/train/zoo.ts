// Model architectures. Each builds the same forward graph with weights either as graph inputs (for training) or
// baked in as initializers (the deployable model, which onnxruntime runs fastest).
import { GraphBuilder } from '../onnx/builder.js';
import type { ModelProto } from '../onnx/proto.js';
import type { Rng } from '../runtime/rng.js';

export interface Param {
  name: string;
  dims: number[];
  /** He-uniform fan-in for weights, zero for biases. */
  fanIn: number;
}

export interface Architecture {
  name: string;
  input: [number, number, number];
  classes: number;
  params: Param[];
  /** Builds the forward graph; `weight(name)` returns the value name holding that parameter. */
  forward: (g: GraphBuilder, x: string, weight: (name: string) => string) => string;
}

export const smallCnn: Architecture = {
  name: 'small-cnn',
  input: [1, 28, 28],
  classes: 10,
  params: [
    { name: 'conv1.weight', dims: [16, 1, 3, 3], fanIn: 9 },
    { name: 'conv1.bias', dims: [16], fanIn: 0 },
    { name: 'conv2.weight', dims: [32, 16, 3, 3], fanIn: 144 },
    { name: 'conv2.bias', dims: [32], fanIn: 0 },
    { name: 'fc.weight', dims: [1568, 10], fanIn: 1568 },
    { name: 'fc.bias', dims: [10], fanIn: 0 },
  ],
  forward: (g, x, w) => {
    const c1 = g.op('Relu', [
      g.op('Conv', [x, w('conv1.weight'), w('conv1.bias')], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
    ]);
    const p1 = g.op('MaxPool', [c1], { kernel_shape: [2, 2], strides: [2, 2] });
    const c2 = g.op('Relu', [
      g.op('Conv', [p1, w('conv2.weight'), w('conv2.bias')], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
    ]);
    const p2 = g.op('MaxPool', [c2], { kernel_shape: [2, 2], strides: [2, 2] });
    return g.op('Gemm', [g.op('Flatten', [p2]), w('fc.weight'), w('fc.bias')], {}, ['logits']);
  },
};

const conv = (name: string, cout: number, cin: number): Param[] => [
  { name: `${name}.weight`, dims: [cout, cin, 3, 3], fanIn: cin * 9 },
  { name: `${name}.bias`, dims: [cout], fanIn: 0 },
];
const dense = (name: string, fin: number, fout: number): Param[] => [
  { name: `${name}.weight`, dims: [fin, fout], fanIn: fin },
  { name: `${name}.bias`, dims: [fout], fanIn: 0 },
];

/** The wide 4-conv CNN of the reference runs: 32-32-pool-64-64-pool, FC 256, FC 10. */
export const wideCnn: Architecture = {
  name: 'wide-cnn',
  input: [1, 28, 28],
  classes: 10,
  params: [
    ...conv('conv1', 32, 1),
    ...conv('conv2', 32, 32),
    ...conv('conv3', 64, 32),
    ...conv('conv4', 64, 64),
    ...dense('fc1', 3136, 256),
    ...dense('fc2', 256, 10),
  ],
  forward: (g, x, w) => {
    const c = (h: string, name: string) =>
      g.op('Relu', [
        g.op('Conv', [h, w(`${name}.weight`), w(`${name}.bias`)], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }),
      ]);
    const pool = (h: string) => g.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] });
    const h = pool(c(c(pool(c(c(x, 'conv1'), 'conv2')), 'conv3'), 'conv4'));
    const f = g.op('Relu', [g.op('Gemm', [g.op('Flatten', [h]), w('fc1.weight'), w('fc1.bias')])]);
    return g.op('Gemm', [f, w('fc2.weight'), w('fc2.bias')], {}, ['logits']);
  },
};

/** A two-hidden-layer MLP: 784-256-256-10. */
export const mlp: Architecture = {
  name: 'mlp',
  input: [1, 28, 28],
  classes: 10,
  params: [...dense('fc1', 784, 256), ...dense('fc2', 256, 256), ...dense('fc3', 256, 10)],
  forward: (g, x, w) => {
    const fc = (h: string, name: string) => g.op('Gemm', [h, w(`${name}.weight`), w(`${name}.bias`)]);
    const h = g.op('Relu', [fc(g.op('Relu', [fc(g.op('Flatten', [x]), 'fc1')]), 'fc2')]);
    return g.op('Gemm', [h, w('fc3.weight'), w('fc3.bias')], {}, ['logits']);
  },
};

export const ARCHITECTURES: Record<string, Architecture> = {
  [smallCnn.name]: smallCnn,
  [wideCnn.name]: wideCnn,
  [mlp.name]: mlp,
};

export function initWeights(arch: Architecture, rng: Rng): Map<string, Float32Array> {
  return new Map(
    arch.params.map((p) => {
      const n = p.dims.reduce((a, b) => a * b, 1);
      const bound = p.fanIn ? Math.sqrt(6 / p.fanIn) : 0;
      return [p.name, Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * bound)];
    }),
  );
}

/** The training graph's forward part: weights are graph inputs. */
export function trainableModel(arch: Architecture): ModelProto {
  const g = new GraphBuilder();
  const x = g.input('input', ['N', ...arch.input]);
  for (const p of arch.params) g.input(p.name, p.dims);
  g.output(
    arch.forward(g, x, (n) => n),
    ['N', arch.classes],
  );
  return g.build({ name: arch.name });
}

/** The deployable model: weights baked in as initializers, input `input` [N, C, H, W], output `logits`. */
export function deployableModel(arch: Architecture, weights: Map<string, Float32Array>): ModelProto {
  const g = new GraphBuilder();
  const x = g.input('input', ['N', ...arch.input]);
  for (const p of arch.params) g.init(p.name, weights.get(p.name)!, p.dims);
  g.output(
    arch.forward(g, x, (n) => n),
    ['N', arch.classes],
  );
  return g.build({ name: arch.name });
}
