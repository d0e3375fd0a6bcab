// Softmax, LogSoftmax, reductions and inference-form BatchNormalization.
import { attrFloat, attrInt, attrInts, tensorValues } from '../../onnx/builder.js';
import type { NodeProto, TensorProto } from '../../onnx/proto.js';
import { normalizeAxis, product } from '../shapes.js';
import { AutodiffError, nodeLabel, type GradContext, type OpDef } from '../types.js';

const same: OpDef['infer'] = ({ shapes }) => [shapes[0]!];

/** Reduction axes: an input since opset 18 for ReduceMean and 13 for ReduceSum, an attribute before. */
function reduceAxes(node: NodeProto, rank: number, constant: (n: string) => TensorProto | undefined): number[] {
  const fromInput = node.input![1] ? constant(node.input![1]) : undefined;
  if (node.input![1] && !fromInput) throw new AutodiffError(`${nodeLabel(node)}: axes must be a constant`);
  const axes = fromInput
    ? Array.from(tensorValues(fromInput) as ArrayLike<number | bigint>, Number)
    : attrInts(node, 'axes', undefined);
  if (!axes || axes.length === 0) {
    if (attrInt(node, 'noop_with_empty_axes', 0)) return [];
    return Array.from({ length: rank }, (_v, i) => i);
  }
  return axes.map((a) => normalizeAxis(a, rank));
}

const reduceInfer: OpDef['infer'] = ({ node, shapes, constant }) => {
  const x = shapes[0]!;
  const axes = reduceAxes(node, x.length, constant);
  const keep = attrInt(node, 'keepdims', 1) === 1;
  return [keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_d, i) => !axes.includes(i))];
};

/** Broadcasts a reduction's gradient back over the reduced axes. */
function spread(ctx: GradContext, scale: (axes: number[], x: number[]) => number): string {
  const { g, node, dOut, shapeOf, constant } = ctx;
  const x = shapeOf(node.input![0]);
  const axes = reduceAxes(node, x.length, constant);
  let dy = dOut[0]!;
  if (attrInt(node, 'keepdims', 1) === 0 && axes.length > 0) dy = g.op('Unsqueeze', [dy, g.constI64(axes)]);
  const k = scale(axes, x);
  if (k !== 1) dy = g.op('Mul', [dy, g.constF([k], [])]);
  return g.op('Expand', [dy, g.op('Shape', [node.input![0]])]);
}

export const softmax: Record<string, OpDef> = {
  Softmax: {
    infer: same,
    // dx = y·(dy − Σ dy·y)
    grad: ({ g, node, dOut, shapeOf }) => {
      const y = node.output![0];
      const axis = normalizeAxis(attrInt(node, 'axis', -1), shapeOf(y).length);
      const dot = g.op('ReduceSum', [g.op('Mul', [dOut[0]!, y]), g.constI64([axis])], { keepdims: 1 });
      return [g.op('Mul', [y, g.op('Sub', [dOut[0]!, dot])])];
    },
  },
  LogSoftmax: {
    infer: same,
    // dx = dy − softmax·Σ dy
    grad: ({ g, node, dOut, shapeOf }) => {
      const y = node.output![0];
      const axis = normalizeAxis(attrInt(node, 'axis', -1), shapeOf(y).length);
      const total = g.op('ReduceSum', [dOut[0]!, g.constI64([axis])], { keepdims: 1 });
      return [g.op('Sub', [dOut[0]!, g.op('Mul', [g.op('Exp', [y]), total])])];
    },
  },
  ReduceSum: { infer: reduceInfer, grad: (c) => [spread(c, () => 1)] },
  ReduceMean: {
    infer: reduceInfer,
    grad: (c) => [
      spread(c, (axes, x) => {
        const n = product(axes.map((a) => x[a]));
        if (n <= 0) throw new AutodiffError(`${nodeLabel(c.node)}: the reduced sizes must be known`);
        return 1 / n;
      }),
    ],
  },
  BatchNormalization: {
    infer: ({ node, shapes }) => {
      if (node.output!.length > 1)
        throw new AutodiffError(`${nodeLabel(node)}: only the inference form (one output) is supported`);
      return [shapes[0]!];
    },
    // Inference form: y = (x − mean)/√(var + ε)·scale + bias, with mean and var constants.
    grad: ({ g, node, dOut, needs, shapeOf }) => {
      const [x, scale, , mean, variance] = node.input as string[];
      const rank = shapeOf(x).length;
      const perChannel = (t: string) =>
        g.op('Unsqueeze', [t, g.constI64(Array.from({ length: rank - 2 }, (_v, i) => i + 1))]);
      const eps = attrFloat(node, 'epsilon', 1e-5);
      const invStd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, g.constF([eps], [])])])]);
      const axes = g.constI64([0, ...Array.from({ length: rank - 2 }, (_v, i) => i + 2)]);
      const dy = dOut[0]!;
      const dx = needs[0] ? g.op('Mul', [dy, perChannel(g.op('Mul', [scale, invStd]))]) : undefined;
      let dScale: string | undefined;
      if (needs[1]) {
        const xhat = g.op('Mul', [g.op('Sub', [x, perChannel(mean)]), perChannel(invStd)]);
        dScale = g.op('ReduceSum', [g.op('Mul', [dy, xhat]), axes], { keepdims: 0 });
      }
      const dBias = needs[2] ? g.op('ReduceSum', [dy, axes], { keepdims: 0 }) : undefined;
      return [dx, dScale, dBias];
    },
  },
};
