// What a model holds, and which of its ops the engine can differentiate.
import { OPS, hasGradient } from './autodiff/ops/index.js';
import { visitGraph } from './onnx/model.js';
import { num, type ModelProto, type ValueInfoProto } from './onnx/proto.js';

export interface ModelSummary {
  opset: number;
  producer: string;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
  parameters: number;
  ops: { op: string; count: number; gradient: boolean }[];
  /** Ops without a gradient rule: white-box attacks cannot run; forward-only attacks can. */
  withoutGradient: string[];
}

function shapeOf(v: ValueInfoProto): (number | string)[] {
  return (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : num(d.dimValue)));
}

export function inspectModel(model: ModelProto): ModelSummary {
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const counts = new Map<string, number>();
  visitGraph(graph, (n) => counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1));
  const ops = [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, count]) => ({ op, count, gradient: hasGradient(op) }));
  return {
    opset: num((model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: (graph.input ?? [])
      .filter((i) => !initializers.has(i.name))
      .map((i) => ({ name: i.name!, shape: shapeOf(i) })),
    outputs: (graph.output ?? []).map((o) => ({ name: o.name!, shape: shapeOf(o) })),
    parameters: (graph.initializer ?? []).reduce((a, t) => a + (t.dims ?? []).map(num).reduce((x, y) => x * y, 1), 0),
    ops,
    withoutGradient: ops.filter((o) => !o.gradient).map((o) => o.op),
  };
}

/**
 * Multiply-add FLOPs (2 per MAC) of one forward pass for one input, over Conv, Gemm and MatMul (elementwise ops are
 * negligible next to them). Shapes come from the same shape rules the autodiff uses.
 */
export function forwardFlops(model: ModelProto): number {
  const graph = model.graph!;
  const shapes = new Map<string, number[]>();
  const constants = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  for (const t of graph.initializer ?? []) shapes.set(t.name!, (t.dims ?? []).map(num));
  for (const i of graph.input ?? [])
    if (!shapes.has(i.name!))
      shapes.set(
        i.name!,
        (i.type?.tensorType?.shape?.dim ?? []).map((d, k) => (k === 0 ? 1 : num(d.dimValue))),
      );
  let flops = 0;
  for (const node of graph.node ?? []) {
    const op = OPS[node.opType!];
    if (!op) throw new Error(`cannot count FLOPs through ${node.opType}`);
    const ins = (node.input ?? []).map((n) => shapes.get(n));
    const outs = op.infer({ node, shapes: ins, constant: (n) => constants.get(n) });
    outs.forEach((s, k) => shapes.set(node.output![k], s));
    const y = outs[0];
    if (node.opType === 'Conv') flops += 2 * y.reduce((a, b) => a * b, 1) * ins[1]!.slice(1).reduce((a, b) => a * b, 1);
    if (node.opType === 'Gemm' || node.opType === 'MatMul')
      flops += 2 * y.reduce((a, b) => a * b, 1) * ins[0]![ins[0]!.length - 1];
  }
  return flops;
}
