// 2-D Conv. Input gradient: ConvTranspose with the same weights. Weight gradient: a Conv of the input (channels and
// batch swapped) with the output gradient as kernel, strides and dilations exchanged, one group at a time.
import { attrInt, attrInts, attrString, type GraphBuilder } from '../../onnx/builder.js';
import type { NodeProto } from '../../onnx/proto.js';
import { AutodiffError, nodeLabel, type OpDef } from '../types.js';

export interface ConvGeometry {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

export function convGeometry(node: NodeProto, kernel: number[]): ConvGeometry {
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new AutodiffError(`${nodeLabel(node)}: auto_pad ${autoPad} is not supported; export the model with explicit pads`);
  const k = attrInts(node, 'kernel_shape', undefined) ?? kernel;
  if (k.length !== 2) throw new AutodiffError(`${nodeLabel(node)}: only 2-D kernels are supported, got ${k.length}-D`);
  return {
    kernel: k,
    strides: attrInts(node, 'strides', [1, 1])!,
    pads: autoPad === 'VALID' ? [0, 0, 0, 0] : attrInts(node, 'pads', [0, 0, 0, 0])!,
    dilations: attrInts(node, 'dilations', [1, 1])!,
    group: attrInt(node, 'group', 1),
  };
}

/** Output size of one spatial axis (floor mode). */
export function convOut(size: number, k: number, s: number, padBegin: number, padEnd: number, d: number, ceil = false): number {
  if (size < 0) return -1;
  const span = size + padBegin + padEnd - d * (k - 1) - 1;
  return (ceil ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
}

export const conv: Record<string, OpDef> = {
  Conv: {
    infer: ({ node, shapes }) => {
      const [x, w] = shapes as number[][];
      if (x.length !== 4) throw new AutodiffError(`${nodeLabel(node)}: only 2-D convolutions (rank-4 input) are supported`);
      const geo = convGeometry(node, w.slice(2));
      return [[x[0], w[0], ...[0, 1].map((i) => convOut(x[2 + i], geo.kernel[i], geo.strides[i], geo.pads[i], geo.pads[i + 2], geo.dilations[i]))]];
    },
    grad: ({ g, node, dOut, needs, shapeOf }) => {
      const [x, w, b] = node.input as string[];
      const dy = dOut[0]!;
      const xs = shapeOf(x);
      const ws = shapeOf(w);
      const ys = shapeOf(node.output![0]);
      const geo = convGeometry(node, ws.slice(2));
      if (xs.slice(1).some((d) => d < 0) || ws.some((d) => d < 0)) throw new AutodiffError(`${nodeLabel(node)}: channel and spatial sizes must be known to differentiate`);
      let dx: string | undefined;
      if (needs[0]) {
        const outputPadding = [0, 1].map((i) => xs[2 + i] - ((ys[2 + i] - 1) * geo.strides[i] - geo.pads[i] - geo.pads[i + 2] + geo.dilations[i] * (geo.kernel[i] - 1) + 1));
        dx = g.op('ConvTranspose', [dy, w], { strides: geo.strides, pads: geo.pads, dilations: geo.dilations, group: geo.group, output_padding: outputPadding, kernel_shape: geo.kernel });
      }
      const dw = needs[1] ? weightGrad(g, x, dy, xs, ws, geo) : undefined;
      const db = b && needs[2] ? g.op('ReduceSum', [dy, g.constI64([0, 2, 3])], { keepdims: 0 }) : undefined;
      return [dx, dw, db];
    },
  },
};

function weightGrad(g: GraphBuilder, x: string, dy: string, xs: number[], ws: number[], geo: ConvGeometry): string {
  const cin = xs[1] / geo.group;
  const cout = ws[0] / geo.group;
  const parts: string[] = [];
  for (let i = 0; i < geo.group; i++) {
    const slice = (t: string, n: number) => (geo.group === 1 ? t : g.op('Slice', [t, g.constI64([i * n]), g.constI64([(i + 1) * n]), g.constI64([1])]));
    const xt = g.op('Transpose', [slice(x, cin)], { perm: [1, 0, 2, 3] });
    const dyt = g.op('Transpose', [slice(dy, cout)], { perm: [1, 0, 2, 3] });
    const z = g.op('Conv', [xt, dyt], { strides: geo.dilations, dilations: geo.strides, pads: geo.pads });
    // The result covers at least the kernel; the rest lies outside it.
    const cropped = g.op('Slice', [z, g.constI64([0, 0]), g.constI64(geo.kernel), g.constI64([2, 3])]);
    parts.push(g.op('Transpose', [cropped], { perm: [1, 0, 2, 3] }));
  }
  return parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 0 });
}
