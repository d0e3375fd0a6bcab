// Elementwise ops: forward shape = broadcast of inputs; gradients undo broadcasting.
import { attrFloat } from '../../onnx/builder.js';
import { broadcastShapes, unbroadcast } from '../shapes.js';
import type { GradContext, OpDef } from '../types.js';

const same: OpDef['infer'] = ({ shapes }) => [shapes[0]!];
const broadcast: OpDef['infer'] = ({ shapes }) => [broadcastShapes(shapes[0]!, shapes[1]!)];

/** Gradient for each of two broadcast inputs, given the local derivative terms (already multiplied by dY). */
function binary(ctx: GradContext, da: () => string, db: () => string): (string | undefined)[] {
  const [a, b] = ctx.node.input as string[];
  const y = ctx.shapeOf(ctx.node.output![0]);
  return [
    ctx.needs[0] ? unbroadcast(ctx.g, da(), y, a, ctx.shapeOf(a)) : undefined,
    ctx.needs[1] ? unbroadcast(ctx.g, db(), y, b, ctx.shapeOf(b)) : undefined,
  ];
}

export const elementwise: Record<string, OpDef> = {
  Identity: { infer: same, grad: ({ dOut }) => [dOut[0]] },
  // Inference-mode Dropout is the identity; its mask output carries no gradient.
  Dropout: { infer: same, grad: ({ dOut }) => [dOut[0]] },
  Add: {
    infer: broadcast,
    grad: (c) =>
      binary(
        c,
        () => c.dOut[0]!,
        () => c.dOut[0]!,
      ),
  },
  Sub: {
    infer: broadcast,
    grad: (c) =>
      binary(
        c,
        () => c.dOut[0]!,
        () => c.g.op('Neg', [c.dOut[0]!]),
      ),
  },
  Mul: {
    infer: broadcast,
    grad: (c) =>
      binary(
        c,
        () => c.g.op('Mul', [c.dOut[0]!, c.node.input![1]]),
        () => c.g.op('Mul', [c.dOut[0]!, c.node.input![0]]),
      ),
  },
  Div: {
    infer: broadcast,
    // d(a/b)/da = 1/b; d(a/b)/db = -a/b² = -y/b
    grad: (c) =>
      binary(
        c,
        () => c.g.op('Div', [c.dOut[0]!, c.node.input![1]]),
        () => c.g.op('Neg', [c.g.op('Div', [c.g.op('Mul', [c.dOut[0]!, c.node.output![0]]), c.node.input![1]])]),
      ),
  },
  Relu: {
    infer: same,
    // Mul by a cast mask is faster than Where (ENGINE-NOTES).
    grad: ({ g, node, dOut }) => [
      g.op('Mul', [dOut[0]!, g.op('Cast', [g.op('Greater', [node.input![0], g.constF([0], [])])], { to: 1 })]),
    ],
  },
  LeakyRelu: {
    infer: same,
    grad: ({ g, node, dOut }) => {
      const alpha = attrFloat(node, 'alpha', 0.01);
      const pos = g.op('Cast', [g.op('Greater', [node.input![0], g.constF([0], [])])], { to: 1 });
      // slope = alpha + (1 - alpha)·[x > 0]
      const slope = g.op('Add', [g.op('Mul', [pos, g.constF([1 - alpha], [])]), g.constF([alpha], [])]);
      return [g.op('Mul', [dOut[0]!, slope])];
    },
  },
  Sigmoid: {
    infer: same,
    grad: ({ g, node, dOut }) => {
      const y = node.output![0];
      return [g.op('Mul', [dOut[0]!, g.op('Mul', [y, g.op('Sub', [g.constF([1], []), y])])])];
    },
  },
  Tanh: {
    infer: same,
    grad: ({ g, node, dOut }) => {
      const y = node.output![0];
      return [g.op('Mul', [dOut[0]!, g.op('Sub', [g.constF([1], []), g.op('Mul', [y, y])])])];
    },
  },
  Clip: {
    infer: same,
    // Gradient passes where min < x < max (bounds are inputs since opset 11; absent means unbounded).
    grad: ({ g, node, dOut }) => {
      const [x, lo, hi] = node.input as string[];
      let mask = g.op('Cast', [g.op('Not', [g.op('IsNaN', [x])])], { to: 1 });
      if (lo) mask = g.op('Mul', [mask, g.op('Cast', [g.op('Greater', [x, lo])], { to: 1 })]);
      if (hi) mask = g.op('Mul', [mask, g.op('Cast', [g.op('Less', [x, hi])], { to: 1 })]);
      return [g.op('Mul', [dOut[0]!, mask])];
    },
  },
  Neg: { infer: same, grad: ({ g, dOut }) => [g.op('Neg', [dOut[0]!])] },
  Exp: { infer: same, grad: ({ g, node, dOut }) => [g.op('Mul', [dOut[0]!, node.output![0]])] },
};
