import type { GraphBuilder } from '../onnx/builder.js';
import { AutodiffError, type Shape } from './types.js';

export function broadcastShapes(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (x === -1 || y === -1) out.push(Math.max(x, y));
    else throw new AutodiffError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  }
  return out;
}

/** Sums a gradient of shape `from` down to the shape of `target` (undoing broadcasting), reshaped at run time. */
export function unbroadcast(g: GraphBuilder, grad: string, from: Shape, target: string, to: Shape): string {
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    if (i < lead) axes.push(i);
    else if (to[i - lead] === 1 && from[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return grad;
  const summed = g.op('ReduceSum', [grad, g.constI64(axes)], { keepdims: 1 });
  return g.op('Reshape', [summed, g.op('Shape', [target])]);
}

export function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

export function product(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}
