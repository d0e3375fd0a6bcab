// One walk over everything in a model that onnxruntime may load: the main graph, every subgraph (If, Loop, Scan
// bodies, at any depth), local functions, and training_info graphs; in each, initializers, sparse initializers and
// node attributes (tensor, tensors, sparse tensor(s), graph(s)). Measured (tensor-locations test): onnxruntime reads
// external data for subgraph initializers, Constant values inside subgraphs, sparse initializers and sparse Constant
// values, and inlines function bodies; it ignores training_info. Every location is walked anyway, so a future
// runtime that reads one more cannot be pointed at a file.
//
// Only fields this schema knows are walked; that is enough because sessions are built from the decoded model
// re-encoded (createSession takes a ModelProto), and re-encoding drops every field the decoder did not know.
import type { GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto } from './proto.js';

export interface ModelVisitor {
  graph?(graph: GraphProto, where: string, depth: number): void;
  node?(node: NodeProto, where: string): void;
  tensor?(tensor: TensorProto, where: string): void;
  sparse?(sparse: SparseTensorProto, where: string): void;
}

/** Thrown for a graph nested deeper than allowed, before the walk recurses into it. */
export class DepthError extends Error {
  constructor(readonly where: string) {
    super(where);
  }
}

const label = (n: NodeProto) => `node ${n.name || n.opType || '?'}`;

function walkNode(node: NodeProto, where: string, depth: number, maxDepth: number, v: ModelVisitor): void {
  const at = `${label(node)}${where}`;
  v.node?.(node, at);
  for (const a of node.attribute ?? []) {
    const attr = `attribute ${a.name ?? '?'} of ${at}`;
    if (a.t) v.tensor?.(a.t, attr);
    for (const t of a.tensors ?? []) v.tensor?.(t, attr);
    if (a.sparseTensor) v.sparse?.(a.sparseTensor, attr);
    for (const s of a.sparseTensors ?? []) v.sparse?.(s, attr);
    if (a.g) walkGraph(a.g, ` in graph ${a.name ?? '?'} of ${at}`, depth + 1, maxDepth, v);
    for (const g of a.graphs ?? []) walkGraph(g, ` in graph ${a.name ?? '?'} of ${at}`, depth + 1, maxDepth, v);
  }
}

function walkGraph(graph: GraphProto, where: string, depth: number, maxDepth: number, v: ModelVisitor): void {
  if (depth > maxDepth) throw new DepthError(where.replace(/^ in /, ''));
  v.graph?.(graph, where, depth);
  for (const t of graph.initializer ?? []) v.tensor?.(t, `initializer "${t.name ?? ''}"${where}`);
  for (const s of graph.sparseInitializer ?? []) v.sparse?.(s, `sparse initializer "${s.values?.name ?? ''}"${where}`);
  for (const n of graph.node ?? []) walkNode(n, where, depth, maxDepth, v);
}

/** Visits every graph, node and tensor of the model; graphs nested deeper than maxDepth throw DepthError. */
export function walkModel(model: ModelProto, v: ModelVisitor, maxDepth: number): void {
  if (model.graph) walkGraph(model.graph, '', 0, maxDepth, v);
  for (const f of model.functions ?? []) {
    const where = ` in function ${f.domain ?? ''}.${f.name ?? '?'}`;
    for (const n of f.node ?? []) walkNode(n, where, 0, maxDepth, v);
  }
  (model.trainingInfo ?? []).forEach((info, i) => {
    if (info.initialization) walkGraph(info.initialization, ` in training_info[${i}] initialization`, 1, maxDepth, v);
    if (info.algorithm) walkGraph(info.algorithm, ` in training_info[${i}] algorithm`, 1, maxDepth, v);
  });
}

/**
 * The number of nodes onnxruntime builds once it inlines local functions: a node calling a function counts as that
 * function's nodes (expanded the same way), so a few small functions calling each other cannot multiply into
 * millions of nodes unseen. Recursive functions are refused by the caller through `undefined`.
 */
export function expandedNodeCount(model: ModelProto): number | undefined {
  const fns = new Map<string, NodeProto[]>();
  for (const f of model.functions ?? []) fns.set(`${f.domain ?? ''}:${f.name ?? ''}`, f.node ?? []);
  const memo = new Map<string, number>();
  const active = new Set<string>();
  const countNodes = (nodes: NodeProto[]): number | undefined => {
    let total = 0;
    for (const n of nodes) {
      const key = `${n.domain ?? ''}:${n.opType ?? ''}`;
      let size = 1;
      if (fns.has(key)) {
        if (active.has(key)) return undefined;
        if (!memo.has(key)) {
          active.add(key);
          const inner = countNodes(fns.get(key)!);
          active.delete(key);
          if (inner === undefined) return undefined;
          memo.set(key, inner);
        }
        size = memo.get(key)!;
      }
      let sub = 0;
      for (const a of n.attribute ?? []) {
        for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
          const c = countNodes(g.node ?? []);
          if (c === undefined) return undefined;
          sub += c;
        }
      }
      total += size + sub;
      // Past this nothing is gained by counting on: the caller refuses anyway.
      if (total > Number.MAX_SAFE_INTEGER / 4) return total;
    }
    return total;
  };
  return countNodes(model.graph?.node ?? []);
}
