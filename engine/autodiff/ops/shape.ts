// Ops that move values without changing them: their gradients move the gradient back.
import { attrInt, attrInts, tensorValues } from '../../onnx/builder.js';
import { num, type TensorProto } from '../../onnx/proto.js';
import { normalizeAxis, product } from '../shapes.js';
import { AutodiffError, nodeLabel, type GradContext, type OpDef } from '../types.js';

const reshapeBack = ({ g, node, dOut }: GradContext) => [g.op('Reshape', [dOut[0]!, g.op('Shape', [node.input![0]])])];

function constInts(t: TensorProto | undefined): number[] | undefined {
  return t ? Array.from(tensorValues(t) as ArrayLike<number | bigint>, (v) => Number(v)) : undefined;
}

/** Reshape's target with 0 (copy) and -1 (infer) resolved where the known sizes allow. */
function reshapeTarget(input: number[], target: number[]): number[] {
  const out = target.map((d, i) => (d === 0 ? input[i] : d));
  const minus = out.indexOf(-1);
  if (minus < 0) return out;
  const copiedUnknown = target.filter((d, i) => d === 0 && input[i] === -1).length;
  const unknownIn = input.filter((d) => d === -1).length;
  if (unknownIn !== copiedUnknown) return out;
  const known = (dims: number[], skip: (d: number, i: number) => boolean) =>
    product(dims.filter((d, i) => !skip(d, i) && d !== -1));
  out[minus] = known(input, () => false) / known(out, (_d, i) => i === minus || (target[i] === 0 && input[i] === -1));
  return out;
}

export const shape: Record<string, OpDef> = {
  Flatten: {
    infer: ({ node, shapes }) => {
      const x = shapes[0]!;
      const axis = normalizeAxis(attrInt(node, 'axis', 1), x.length);
      const lead = x.slice(0, axis);
      const rest = x.slice(axis);
      const f = (d: number[]) => (d.some((v) => v < 0) ? -1 : product(d));
      return [[f(lead), f(rest)]];
    },
    grad: reshapeBack,
  },
  Reshape: {
    infer: ({ node, shapes, constant }) => {
      const target = constInts(constant(node.input![1]));
      if (!target) throw new AutodiffError(`${nodeLabel(node)}: the target shape must be a constant`);
      return [reshapeTarget(shapes[0]!, target)];
    },
    grad: reshapeBack,
  },
  Squeeze: {
    infer: ({ node, shapes, constant }) => {
      const x = shapes[0]!;
      const axes = (
        constInts(node.input![1] ? constant(node.input![1]) : undefined) ?? x.flatMap((d, i) => (d === 1 ? [i] : []))
      ).map((a) => normalizeAxis(a, x.length));
      return [x.filter((_d, i) => !axes.includes(i))];
    },
    grad: reshapeBack,
  },
  Unsqueeze: {
    infer: ({ node, shapes, constant }) => {
      const x = shapes[0]!;
      const axes = constInts(constant(node.input![1]));
      if (!axes) throw new AutodiffError(`${nodeLabel(node)}: axes must be a constant`);
      const rank = x.length + axes.length;
      const norm = axes.map((a) => normalizeAxis(a, rank));
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x[j++]);
      return [out];
    },
    grad: reshapeBack,
  },
  Transpose: {
    infer: ({ node, shapes }) => {
      const x = shapes[0]!;
      const perm = attrInts(node, 'perm', undefined) ?? x.map((_d, i) => x.length - 1 - i);
      return [perm.map((p) => x[p])];
    },
    grad: ({ g, node, dOut, shapeOf }) => {
      const rank = shapeOf(node.input![0]).length;
      const perm = attrInts(node, 'perm', undefined) ?? Array.from({ length: rank }, (_v, i) => rank - 1 - i);
      const inverse = new Array<number>(rank);
      perm.forEach((p, i) => (inverse[p] = i));
      return [g.op('Transpose', [dOut[0]!], { perm: inverse })];
    },
  },
  Concat: {
    infer: ({ node, shapes }) => {
      const first = shapes[0]!;
      const axis = normalizeAxis(attrInt(node, 'axis', 0), first.length);
      const out = [...first];
      out[axis] = shapes.some((s) => s![axis] < 0) ? -1 : shapes.reduce((a, s) => a + s![axis], 0);
      return [out];
    },
    grad: ({ g, node, dOut, needs, shapeOf }) => {
      const inputs = node.input as string[];
      const axis = normalizeAxis(attrInt(node, 'axis', 0), shapeOf(inputs[0]).length);
      let offset = 0;
      return inputs.map((x, i) => {
        const size = shapeOf(x)[axis];
        if (size < 0) throw new AutodiffError(`${nodeLabel(node)}: sizes along the concat axis must be known`);
        const start = offset;
        offset += size;
        return needs[i]
          ? g.op('Slice', [dOut[0]!, g.constI64([start]), g.constI64([start + size]), g.constI64([axis])])
          : undefined;
      });
    },
  },
  Pad: {
    infer: ({ node, shapes, constant }) => {
      const x = shapes[0]!;
      const pads = constInts(constant(node.input![1]));
      if (!pads) throw new AutodiffError(`${nodeLabel(node)}: pads must be a constant`);
      return [x.map((d, i) => (d < 0 ? -1 : d + pads[i] + pads[i + x.length]))];
    },
    grad: ({ g, node, dOut, shapeOf, constant }) => {
      const mode = node.attribute?.find((a) => a.name === 'mode')?.s;
      if (mode && new TextDecoder().decode(mode) !== 'constant')
        throw new AutodiffError(`${nodeLabel(node)}: only constant padding is supported`);
      if (node.input!.length > 3 && node.input![3])
        throw new AutodiffError(`${nodeLabel(node)}: the axes input is not supported`);
      const x = shapeOf(node.input![0]);
      const pads = constInts(constant(node.input![1]))!;
      if (pads.some((p) => p < 0)) throw new AutodiffError(`${nodeLabel(node)}: negative pads are not supported`);
      const rank = x.length;
      const ends = pads.slice(rank).map((p) => (p > 0 ? -p : Number.MAX_SAFE_INTEGER));
      return [
        g.op('Slice', [dOut[0]!, g.constI64(pads.slice(0, rank)), g.constI64(ends), g.constI64(x.map((_d, i) => i))]),
      ];
    },
  },
  Constant: {
    infer: ({ node }) => {
      const t = node.attribute?.find((a) => a.name === 'value')?.t;
      if (!t) throw new AutodiffError(`${nodeLabel(node)}: only tensor-valued Constant nodes are supported`);
      return [(t.dims ?? []).map(num)];
    },
    grad: () => [],
  },
};
