// Reverse-mode differentiation of an ONNX inference graph into a new ONNX graph that outputs a loss and its
// gradients, which onnxruntime then runs like any other model.
import { GraphBuilder, valueInfo } from '../onnx/builder.js';
import { DataType, num, type ModelProto, type NodeProto, type TensorProto } from '../onnx/proto.js';
import { OPS } from './ops/index.js';
import { addDistill } from './distill-loss.js';
import { AutodiffError, nodeLabel, type Shape } from './types.js';

/**
 * cross-entropy: mean softmax cross-entropy. cw-margin: mean of (best other logit − label logit).
 * target-margin: mean of (target logit − label logit), with an int64 [N] `targets` input (DeepFool's per-class step).
 * soft-cross-entropy: mean of −Σ t·log softmax(z) against a float [N, classes] `targets` input of probabilities; it
 * differs from KL(t ‖ softmax(z)) by t's entropy, a constant, so its input gradient is TRADES's inner maximisation.
 * trades: TRADES (Zhang et al. 2019) on logits [2N, classes] holding N clean rows then their N adversarial rows,
 * with N labels: mean CE(clean, y) + β·mean KL(softmax(clean) ‖ softmax(adversarial)), differentiated through both.
 * distill: knowledge distillation at `temperature` with weight `alpha` on the soft term (distill-loss.ts), against a
 * float [N, classes] `targets` input of the teacher's softened probabilities.
 */
export type LossKind = 'cross-entropy' | 'cw-margin' | 'target-margin' | 'soft-cross-entropy' | 'trades' | 'distill';

export interface DifferentiateOptions {
  /** Graph inputs or initializers to differentiate with respect to. */
  wrt: string[];
  /** The output the loss reads (default: the model's first output), shaped [N, classes]. */
  logits?: string;
  loss?: LossKind;
  /** TRADES's β, the weight of the KL term (default 6, the paper's). */
  beta?: number;
  /** Distillation's temperature T (default 1) and the weight α of its soft term (default 1). */
  temperature?: number;
  alpha?: number;
  /**
   * DP-SGD's per-example gradients of the cross-entropy of each example (not the batch mean). 'raw' outputs them as
   * [N, ...parameter shape]; 'clipped' scales each example's whole gradient to at most the norm fed as the float
   * scalar input `clip` and outputs their sums (parameter shape) and the norms before clipping (output `norms`).
   */
  perExample?: 'raw' | 'clipped';
}

export interface GradientModel {
  model: ModelProto;
  /** Name of the int64 [N] labels input the loss adds. */
  labels: string;
  /** The targets input: int64 [N] for target-margin, float [N, classes] for soft-cross-entropy. */
  targets?: string;
  loss: string;
  logits: string;
  /** Output name of the gradient for each `wrt` name. */
  grads: Record<string, string>;
  /** perExample 'clipped': the clip-norm input and the per-example norms output. */
  clip?: string;
  norms?: string;
}

export function differentiate(model: ModelProto, opts: DifferentiateOptions): GradientModel {
  const graph = model.graph!;
  const constants = new Map<string, TensorProto>((graph.initializer ?? []).map((t) => [t.name!, t]));
  for (const n of graph.node ?? []) {
    const t = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined;
    if (t) constants.set(n.output![0], t);
  }
  const shapes = new Map<string, Shape>();
  for (const t of graph.initializer ?? []) shapes.set(t.name!, (t.dims ?? []).map(num));
  for (const i of graph.input ?? []) {
    if (shapes.has(i.name!)) continue;
    shapes.set(
      i.name!,
      (i.type?.tensorType?.shape?.dim ?? []).map((d) =>
        d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue) > 0 ? num(d.dimValue) : -1,
      ),
    );
  }
  for (const w of opts.wrt)
    if (!shapes.has(w)) throw new AutodiffError(`"${w}" is neither an input nor an initializer of the model`);

  // Forward: shapes, and which values depend on what we differentiate.
  const requires = new Set(opts.wrt);
  for (const node of graph.node ?? []) {
    const op = OPS[node.opType!];
    const dependent = (node.input ?? []).some((i) => requires.has(i));
    if (!op || (dependent && !op.grad)) {
      if (dependent)
        throw new AutodiffError(
          `no gradient rule for ${nodeLabel(node)}; supported ops: ${Object.keys(OPS).sort().join(', ')}`,
        );
      continue;
    }
    const inShapes = (node.input ?? []).map((i) => (i ? shapes.get(i) : undefined));
    const out = op.infer({ node, shapes: inShapes, constant: (n) => constants.get(n) });
    out.forEach((s, k) => node.output![k] && shapes.set(node.output![k], s));
    if (dependent) for (const o of node.output ?? []) if (o) requires.add(o);
  }
  const logits = opts.logits ?? graph.output![0].name!;
  if (!requires.has(logits))
    throw new AutodiffError(`the output "${logits}" does not depend on ${opts.wrt.join(', ')}`);
  const logitShape = shapes.get(logits)!;
  if (logitShape.length !== 2)
    throw new AutodiffError(`the loss needs logits of shape [N, classes]; "${logits}" has rank ${logitShape.length}`);

  const g = new GraphBuilder('ad_');
  const labels = g.input('labels', ['N'], DataType.INT64);
  const kind = opts.loss ?? 'cross-entropy';
  const perExample = opts.perExample !== undefined;
  if (perExample && kind !== 'cross-entropy')
    throw new AutodiffError(`per-example gradients are for the cross-entropy loss, not ${kind}`);
  const params = new Set(perExample ? opts.wrt : []);
  const targets =
    kind === 'target-margin'
      ? g.input('targets', ['N'], DataType.INT64)
      : kind === 'soft-cross-entropy' || kind === 'distill'
        ? g.input('targets', ['N', logitShape[1]])
        : undefined;
  const { loss, dLogits } =
    kind === 'trades'
      ? addTrades(g, logits, labels, logitShape[1], opts.beta ?? 6)
      : kind === 'distill'
        ? addDistill(g, logits, labels, logitShape[1], targets!, opts.temperature ?? 1, opts.alpha ?? 1)
        : addLoss(g, logits, labels, logitShape[1], kind, targets, perExample);

  // Backward, in reverse topological order, summing contributions where a value feeds several nodes.
  const contributions = new Map<string, string[]>([[logits, [dLogits]]]);
  const total = (name: string): string | undefined => {
    const parts = contributions.get(name);
    if (!parts?.length) return undefined;
    if (parts.length > 1) contributions.set(name, [g.op('Sum', parts)]);
    return contributions.get(name)![0];
  };
  const nodes = graph.node ?? [];
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    const dOut = (node.output ?? []).map((o) => (o ? total(o) : undefined));
    if (dOut.every((d) => d === undefined)) continue;
    const needs = (node.input ?? []).map((i) => !!i && requires.has(i));
    if (!needs.some(Boolean)) continue;
    // A parameter read by an op that would sum its gradient over the batch: fail rather than mislabel it.
    if (perExample && !OPS[node.opType!].perExample && (node.input ?? []).some((i) => params.has(i)))
      throw new AutodiffError(`${nodeLabel(node)} reads a parameter and has no per-example gradient rule`);
    const grads = OPS[node.opType!].grad!({
      perExample,
      g,
      node,
      dOut,
      needs,
      shapeOf: (n) => shapeOrThrow(shapes, n, node),
      constant: (n) => constants.get(n),
    });
    grads.forEach((gr, i) => {
      if (!gr || !needs[i]) return;
      const name = node.input![i];
      contributions.set(name, [...(contributions.get(name) ?? []), gr]);
    });
  }

  const grads: Record<string, string> = {};
  const raw: Record<string, string> = {};
  for (const w of opts.wrt) {
    const gr = total(w);
    if (!gr) throw new AutodiffError(`no gradient path from "${w}" to the loss`);
    raw[w] = gr;
  }
  const dims = (w: string) => shapes.get(w)!.map((d) => (d < 0 ? 'N' : d));
  let clipped: ReturnType<typeof addClipping> | undefined;
  if (opts.perExample === 'clipped') {
    clipped = addClipping(g, opts.wrt, raw, (w) => shapes.get(w)!);
    Object.assign(raw, Object.fromEntries(opts.wrt.map((w) => [w, clipped!.sums[w]])));
  }
  for (const w of opts.wrt) grads[w] = g.op('Identity', [raw[w]], {}, [`grad_${w}`]);
  const built = g.build();
  const outputs = [
    valueInfo(loss, []),
    valueInfo(logits, undefined),
    ...opts.wrt.map((w) => valueInfo(grads[w], opts.perExample === 'raw' ? ['N', ...dims(w)] : dims(w))),
    ...(clipped ? [valueInfo(clipped.norms, ['N'])] : []),
  ];
  return {
    model: {
      ...model,
      graph: {
        ...graph,
        node: [...nodes, ...built.graph!.node!],
        input: [...(graph.input ?? []), ...built.graph!.input!],
        initializer: [...(graph.initializer ?? []), ...built.graph!.initializer!],
        output: outputs,
        valueInfo: [],
      },
    },
    labels,
    targets,
    loss,
    logits,
    grads,
    ...(clipped ? { clip: clipped.clip, norms: clipped.norms } : {}),
  };
}

/**
 * Per-example clipping (Abadi et al. 2016): each example's gradient over all parameters together is scaled by
 * min(1, C / ‖g_i‖), then the examples are summed, as one MatMul of the factors with the [N, size] gradients.
 */
function addClipping(
  g: GraphBuilder,
  wrt: string[],
  perExample: Record<string, string>,
  shapeOf: (w: string) => Shape,
): { clip: string; norms: string; sums: Record<string, string> } {
  const clip = g.input('clip', [], DataType.FLOAT);
  const flat = Object.fromEntries(wrt.map((w) => [w, g.op('Reshape', [perExample[w], g.constI64([0, -1])])]));
  const squares = wrt.map((w) =>
    g.op('ReduceSum', [g.op('Mul', [flat[w], flat[w]]), g.constI64([1])], { keepdims: 0 }),
  );
  const norms = g.op('Sqrt', [squares.length === 1 ? squares[0] : g.op('Sum', squares)], {}, ['norms']);
  const factor = g.op('Min', [g.op('Div', [clip, g.op('Max', [norms, g.constF([1e-12], [])])]), g.constF([1], [])]);
  const row = g.op('Unsqueeze', [factor, g.constI64([0])]);
  const sums = Object.fromEntries(
    wrt.map((w) => [w, g.op('Reshape', [g.op('MatMul', [row, flat[w]]), g.constI64(shapeOf(w))])]),
  );
  return { clip, norms, sums };
}

/**
 * The loss and its gradient with respect to the logits, written directly: cross-entropy's is softmax − one-hot;
 * the Carlini-Wagner margin's is one-hot(best other class) − one-hot(label). Both are means over the batch and
 * grow as the model gets the label wrong, so attacks ascend them.
 */
function addLoss(
  g: GraphBuilder,
  logits: string,
  labels: string,
  classes: number,
  kind: LossKind,
  targets?: string,
  perExample = false,
): { loss: string; dLogits: string } {
  const batch = g.op('Cast', [g.op('Gather', [g.op('Shape', [logits]), g.constI64([0])])], { to: DataType.FLOAT });
  if (kind === 'soft-cross-entropy') {
    const rows = g.op(
      'ReduceSum',
      [g.op('Mul', [targets!, g.op('LogSoftmax', [logits], { axis: 1 })]), g.constI64([1])],
      { keepdims: 0 },
    );
    const loss = g.op('Neg', [g.op('ReduceMean', [rows], { keepdims: 0 })], {}, ['loss']);
    return { loss, dLogits: g.op('Div', [g.op('Sub', [g.op('Softmax', [logits], { axis: 1 }), targets!]), batch]) };
  }
  const oneHot = g.op('OneHot', [labels, g.constI64([classes]), g.constF([0, 1])], { axis: -1 });
  if (kind === 'cross-entropy') {
    const logp = g.op('LogSoftmax', [logits], { axis: 1 });
    const picked = g.op('ReduceSum', [g.op('Mul', [logp, oneHot]), g.constI64([1])], { keepdims: 0 });
    const loss = g.op('Neg', [g.op('ReduceMean', [picked], { keepdims: 0 })], {}, ['loss']);
    const residual = g.op('Sub', [g.op('Softmax', [logits], { axis: 1 }), oneHot]);
    // Per example: the gradient of each example's own loss, not of the batch mean.
    return { loss, dLogits: perExample ? residual : g.op('Div', [residual, batch]) };
  }
  const masked = g.op('Sub', [logits, g.op('Mul', [oneHot, g.constF([1e9], [])])]);
  const toward = kind === 'target-margin' ? targets! : g.op('ArgMax', [masked], { axis: 1, keepdims: 0 });
  const other = g.op('OneHot', [toward, g.constI64([classes]), g.constF([0, 1])], { axis: -1 });
  const margin = g.op('ReduceSum', [g.op('Mul', [logits, g.op('Sub', [other, oneHot])]), g.constI64([1])], {
    keepdims: 0,
  });
  const loss = g.op('ReduceMean', [margin], { keepdims: 0 }, ['loss']);
  return { loss, dLogits: g.op('Div', [g.op('Sub', [other, oneHot]), batch]) };
}

/**
 * TRADES on [clean; adversarial] logits. With p = softmax(clean), q = softmax(adversarial), v = log p − log q:
 * ∂/∂clean = (p − onehot)/N + β/N·p·(v − Σ p·v) (softmax's Jacobian applied to v; the log p term's own
 * derivative sums to zero), and ∂/∂adversarial = β/N·(q − p).
 */
function addTrades(
  g: GraphBuilder,
  logits: string,
  labels: string,
  classes: number,
  beta: number,
): { loss: string; dLogits: string } {
  const n = g.op('Shape', [labels]);
  const clean = g.op('Slice', [logits, g.constI64([0]), n, g.constI64([0])]);
  const adv = g.op('Slice', [logits, n, g.constI64([2 ** 62]), g.constI64([0])]);
  const batch = g.op('Cast', [n], { to: DataType.FLOAT });
  const oneHot = g.op('OneHot', [labels, g.constI64([classes]), g.constF([0, 1])], { axis: -1 });
  const logp = g.op('LogSoftmax', [clean], { axis: 1 });
  const p = g.op('Softmax', [clean], { axis: 1 });
  const v = g.op('Sub', [logp, g.op('LogSoftmax', [adv], { axis: 1 })]);
  const rowSum = (t: string, keep: number) => g.op('ReduceSum', [t, g.constI64([1])], { keepdims: keep });
  const ce = g.op('Neg', [g.op('ReduceMean', [rowSum(g.op('Mul', [logp, oneHot]), 0)], { keepdims: 0 })]);
  const kl = g.op('ReduceMean', [rowSum(g.op('Mul', [p, v]), 0)], { keepdims: 0 });
  const b = g.constF([beta], []);
  const loss = g.op('Add', [ce, g.op('Mul', [b, kl])], {}, ['loss']);
  const dClean = g.op('Add', [
    g.op('Sub', [p, oneHot]),
    g.op('Mul', [b, g.op('Mul', [p, g.op('Sub', [v, rowSum(g.op('Mul', [p, v]), 1)])])]),
  ]);
  const dAdv = g.op('Mul', [b, g.op('Sub', [g.op('Softmax', [adv], { axis: 1 }), p])]);
  return { loss, dLogits: g.op('Div', [g.op('Concat', [dClean, dAdv], { axis: 0 }), batch]) };
}

function shapeOrThrow(shapes: Map<string, Shape>, name: string, node: NodeProto): Shape {
  const s = shapes.get(name);
  if (!s) throw new AutodiffError(`${nodeLabel(node)}: the shape of "${name}" is unknown`);
  return s;
}
