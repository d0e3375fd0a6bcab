// MatMul and Gemm: gradients are products with the other operand, transposed.
import { attrFloat, attrInt, float, type GraphBuilder } from '../../onnx/builder.js';
import { broadcastShapes, unbroadcast } from '../shapes.js';
import { AutodiffError, nodeLabel, type OpDef } from '../types.js';

function swapLast(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

export const linear: Record<string, OpDef> = {
  MatMul: {
    infer: ({ node, shapes }) => {
      const [a, b] = shapes as number[][];
      if (a.length < 2 || b.length < 2)
        throw new AutodiffError(`${nodeLabel(node)}: 1-D MatMul operands are not supported`);
      const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
      return [[...batch, a[a.length - 2], b[b.length - 1]]];
    },
    perExample: true,
    grad: ({ g, node, dOut, needs, shapeOf, perExample }) => {
      const [a, b] = node.input as string[];
      const dy = dOut[0]!;
      const y = shapeOf(node.output![0]);
      const [sa, sb] = [shapeOf(a), shapeOf(b)];
      if (perExample) return perExampleMatMul(g, { a, b, dy, sa, sb, needs });
      // dA = dY·Bᵀ, dB = Aᵀ·dY, each summed over broadcast batch dimensions.
      const da = needs[0] ? g.op('MatMul', [dy, g.op('Transpose', [b], { perm: swapLast(sb.length) })]) : undefined;
      const db = needs[1] ? g.op('MatMul', [g.op('Transpose', [a], { perm: swapLast(sa.length) }), dy]) : undefined;
      return [
        da && unbroadcast(g, da, [...y.slice(0, -2), sa[sa.length - 2], sa[sa.length - 1]], a, sa),
        db && unbroadcast(g, db, [...y.slice(0, -2), sb[sb.length - 2], sb[sb.length - 1]], b, sb),
      ];
    },
  },

  Gemm: {
    infer: ({ node, shapes }) => {
      const [a, b] = shapes as number[][];
      const m = attrInt(node, 'transA', 0) ? a[1] : a[0];
      const n = attrInt(node, 'transB', 0) ? b[0] : b[1];
      return [[m, n]];
    },
    // Y = α·A'·B' + β·C with A' = Aᵀ if transA, B' = Bᵀ if transB.
    perExample: true,
    grad: ({ g, node, dOut, needs, shapeOf, perExample }) => {
      const [a, b, c] = node.input as string[];
      const dy = dOut[0]!;
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const tA = attrInt(node, 'transA', 0);
      const tB = attrInt(node, 'transB', 0);
      const f = (x: number) => ({ alpha: x, beta: 0 });
      if (perExample) return perExampleGemm(g, { a, b, c, dy, alpha, beta, tA, tB, needs, shapeOf });
      const da = !needs[0]
        ? undefined
        : tA
          ? g.op('Gemm', [b, dy], { ...fl(f(alpha)), transA: tB, transB: 1 })
          : g.op('Gemm', [dy, b], { ...fl(f(alpha)), transB: tB ? 0 : 1 });
      const db = !needs[1]
        ? undefined
        : tB
          ? g.op('Gemm', [dy, a], { ...fl(f(alpha)), transA: 1, transB: tA })
          : g.op('Gemm', [a, dy], { ...fl(f(alpha)), transA: tA ? 0 : 1 });
      let dc: string | undefined;
      if (c && needs[2]) {
        const scaled = beta === 1 ? dy : g.op('Mul', [dy, g.constF([beta], [])]);
        dc = unbroadcast(g, scaled, shapeOf(node.output![0]), c, shapeOf(c));
      }
      return [da, db, dc];
    },
  },
};

/**
 * MatMul of examples [N, in] by a weight [in, out] with a row per example: dW_i = aᵢᵀ·dyᵢ, an outer product. Other
 * layouts (a batched weight, examples on another axis) are refused rather than summed over the batch.
 */
function perExampleMatMul(
  g: GraphBuilder,
  o: { a: string; b: string; dy: string; sa: number[]; sb: number[]; needs: boolean[] },
): (string | undefined)[] {
  if (o.sa.length !== 2 || o.sb.length !== 2)
    throw new AutodiffError('per-example gradients need MatMul of [N, in] examples by an [in, out] weight');
  const da = o.needs[0] ? g.op('MatMul', [o.dy, g.op('Transpose', [o.b], { perm: [1, 0] })]) : undefined;
  const db = o.needs[1]
    ? g.op('MatMul', [g.op('Unsqueeze', [o.a, g.constI64([2])]), g.op('Unsqueeze', [o.dy, g.constI64([1])])])
    : undefined;
  return [da, db];
}

/**
 * Gemm's gradients with a row per example (A's rows are the examples, so transA must be 0): dB_i is the outer
 * product of example i's input row and output-gradient row, dC_i its output-gradient row (C broadcast over the batch).
 */
function perExampleGemm(
  g: GraphBuilder,
  o: {
    a: string;
    b: string;
    c?: string;
    dy: string;
    alpha: number;
    beta: number;
    tA: number;
    tB: number;
    needs: boolean[];
    shapeOf: (n: string) => number[];
  },
): (string | undefined)[] {
  if (o.tA) throw new AutodiffError('per-example gradients need Gemm with transA = 0 (rows are examples)');
  const da = o.needs[0]
    ? g.op('Gemm', [o.dy, o.b], { ...fl({ alpha: o.alpha, beta: 0 }), transB: o.tB ? 0 : 1 })
    : undefined;
  const scale = (t: string, k: number) => (k === 1 ? t : g.op('Mul', [t, g.constF([k], [])]));
  let db: string | undefined;
  if (o.needs[1]) {
    const col = (t: string) => g.op('Unsqueeze', [t, g.constI64([2])]);
    const row = (t: string) => g.op('Unsqueeze', [t, g.constI64([1])]);
    // B is [in, out] (transB 0) or [out, in] (transB 1): per example, aᵢ ⊗ dyᵢ or dyᵢ ⊗ aᵢ.
    db = scale(o.tB ? g.op('MatMul', [col(o.dy), row(o.a)]) : g.op('MatMul', [col(o.a), row(o.dy)]), o.alpha);
  }
  let dc: string | undefined;
  if (o.c && o.needs[2]) {
    const cs = o.shapeOf(o.c);
    if (!(cs.length === 1 || (cs.length === 2 && cs[0] === 1)))
      throw new AutodiffError(
        `per-example gradients need Gemm's C to be a row broadcast over the batch, got [${cs.join(', ')}]`,
      );
    const rows = scale(o.dy, o.beta);
    dc = cs.length === 1 ? rows : g.op('Unsqueeze', [rows, g.constI64([1])]);
  }
  return [da, db, dc];
}

/** Gemm's alpha and beta are float attributes even when whole. */
function fl(o: { alpha: number; beta: number }) {
  return { alpha: float(o.alpha), beta: float(o.beta) };
}
