// Pooling. MaxPool routes the gradient to each window's first maximum in row-major order, as PyTorch and
// onnxruntime do: by comparison with the pooled value where windows tile the input, else through its Indices output
// (valid for overlapping windows too). AveragePool spreads it evenly with a ConvTranspose of ones.
import { attrInt, attrInts } from '../../onnx/builder.js';
import type { NodeProto } from '../../onnx/proto.js';
import { AutodiffError, nodeLabel, type OpDef } from '../types.js';
import { convOut } from './conv.js';

function poolGeometry(node: NodeProto) {
  const kernel = attrInts(node, 'kernel_shape', undefined);
  if (!kernel || kernel.length !== 2)
    throw new AutodiffError(`${nodeLabel(node)}: only 2-D pooling with kernel_shape is supported`);
  return {
    kernel,
    strides: attrInts(node, 'strides', [1, 1])!,
    pads: attrInts(node, 'pads', [0, 0, 0, 0])!,
    dilations: attrInts(node, 'dilations', [1, 1])!,
    ceil: attrInt(node, 'ceil_mode', 0) === 1,
  };
}

const poolInfer: OpDef['infer'] = ({ node, shapes }) => {
  const x = shapes[0]!;
  const p = poolGeometry(node);
  const y = [
    x[0],
    x[1],
    ...[0, 1].map((i) =>
      convOut(x[2 + i], p.kernel[i], p.strides[i], p.pads[i], p.pads[i + 2], p.dilations[i], p.ceil),
    ),
  ];
  return node.output!.length > 1 ? [y, y] : [y];
};

/** The window size when square windows exactly tile the input (kernel = stride, no padding or dilation). */
function tiledWindows(node: NodeProto, xs: number[]): number | undefined {
  const p = poolGeometry(node);
  const [k] = p.kernel;
  const plain =
    p.kernel.every((v, i) => v === k && p.strides[i] === k) &&
    p.pads.every((v) => v === 0) &&
    p.dilations.every((d) => d === 1);
  if (!plain || xs.length !== 4 || xs[2] < 0 || xs[3] < 0 || xs[2] % k !== 0 || xs[3] % k !== 0) return undefined;
  return k;
}

export const pool: Record<string, OpDef> = {
  MaxPool: {
    infer: poolInfer,
    grad: ({ g, node, dOut, shapeOf }) => {
      const x = node.input![0];
      if (attrInt(node, 'storage_order', 0) !== 0)
        throw new AutodiffError(`${nodeLabel(node)}: storage_order 1 is not supported`);
      const tiled = tiledWindows(node, shapeOf(x));
      if (tiled) {
        // Windows tile the input: compare it with the pooled maximum spread back over each window, which
        // onnxruntime runs faster than recomputing Indices and scattering. Of tied maxima the first in row-major
        // order takes the whole gradient, as PyTorch's and onnxruntime's Indices pick it: each maximum is weighted
        // by k² minus its place in the window, and the window's largest weight marks the first.
        const k = tiled;
        const [h, w] = shapeOf(x).slice(2);
        const scales = g.constF([1, 1, k, k]);
        const up = (t: string) =>
          g.op('Resize', [t, '', scales], {
            mode: 'nearest',
            coordinate_transformation_mode: 'asymmetric',
            nearest_mode: 'floor',
          });
        const place = new Float32Array(h * w);
        for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) place[i * w + j] = k * k - ((i % k) * k + (j % k));
        const maxima = g.op('Cast', [g.op('Equal', [x, up(node.output![0])])], { to: 1 });
        const ranked = g.op('Mul', [maxima, g.constF(place, [1, 1, h, w])]);
        const first = g.op('Equal', [ranked, up(g.op('MaxPool', [ranked], { kernel_shape: [k, k], strides: [k, k] }))]);
        return [g.op('Mul', [g.op('Cast', [first], { to: 1 }), up(dOut[0]!)])];
      }
      // Indices count over N·C·H·W, so one flat scatter-add places every window's gradient.
      const indices = node.output!.length > 1 ? node.output![1] : g.opRaw('MaxPool', [x], node.attribute ?? [], 2)[1];
      const flatX = g.op('Reshape', [x, g.constI64([-1])]);
      const zeros = g.op('ConstantOfShape', [g.op('Shape', [flatX])]);
      const scattered = g.op(
        'ScatterElements',
        [zeros, g.op('Reshape', [indices, g.constI64([-1])]), g.op('Reshape', [dOut[0]!, g.constI64([-1])])],
        { axis: 0, reduction: 'add' },
      );
      return [g.op('Reshape', [scattered, g.op('Shape', [x])])];
    },
  },
  AveragePool: {
    infer: poolInfer,
    grad: ({ g, node, dOut, shapeOf }) => {
      const x = node.input![0];
      const xs = shapeOf(x);
      const p = poolGeometry(node);
      const padded = p.pads.some((v) => v !== 0);
      if (p.ceil) throw new AutodiffError(`${nodeLabel(node)}: ceil_mode is not supported`);
      if (padded && attrInt(node, 'count_include_pad', 0) === 0)
        throw new AutodiffError(`${nodeLabel(node)}: padding without count_include_pad is not supported`);
      if (xs[1] < 0) throw new AutodiffError(`${nodeLabel(node)}: the channel count must be known`);
      const area = p.kernel[0] * p.kernel[1];
      const ones = g.constF(new Float32Array(xs[1] * area).fill(1 / area), [xs[1], 1, ...p.kernel]);
      const ys = shapeOf(node.output![0]);
      const outputPadding = [0, 1].map(
        (i) =>
          xs[2 + i] -
          ((ys[2 + i] - 1) * p.strides[i] - p.pads[i] - p.pads[i + 2] + p.dilations[i] * (p.kernel[i] - 1) + 1),
      );
      return [
        g.op('ConvTranspose', [dOut[0]!, ones], {
          strides: p.strides,
          pads: p.pads,
          dilations: p.dilations,
          group: xs[1],
          output_padding: outputPadding,
        }),
      ];
    },
  },
  GlobalAveragePool: {
    infer: ({ shapes }) => [[...shapes[0]!.slice(0, 2), ...shapes[0]!.slice(2).map(() => 1)]],
    grad: ({ g, node, dOut, shapeOf }) => {
      const xs = shapeOf(node.input![0]);
      const spatial = xs.slice(2);
      if (spatial.some((d) => d < 0)) throw new AutodiffError(`${nodeLabel(node)}: spatial sizes must be known`);
      const area = spatial.reduce((a, b) => a * b, 1);
      // [N,C,1,1] × [1,1,H,W] broadcasts the mean's gradient over the window; faster than Expand.
      return [g.op('Mul', [dOut[0]!, g.constF(new Float32Array(area).fill(1 / area), [1, 1, ...spatial])])];
    },
  },
};
