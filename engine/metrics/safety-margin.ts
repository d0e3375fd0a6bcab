// A decision margin for a safety-critical class: its logit raised by m, so the model names it whenever it is within m
// of the best other class (a cost-sensitive decision: missing it costs more than a false alarm). m is calibrated on
// clean held-out images as the largest offset whose clean-accuracy cost stays within a budget, then baked into the
// deployed model as an Add after its logits, so a white-box attacker attacks the model with the margin.
import { onnx, tensor } from '../onnx/builder.js';
import type { ModelProto } from '../onnx/proto.js';

/** The offsets tried, in steps of 0.05 up to 5 logits. */
const STEP = 0.05;
const MAX_MARGIN = 5;

function accuracyWith(logits: Float32Array, labels: ArrayLike<number>, classes: number, cls: number, m: number) {
  let right = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    let top = -Infinity;
    for (let k = 0; k < classes; k++) {
      const v = logits[i * classes + k] + (k === cls ? m : 0);
      if (v > top) [top, best] = [v, k];
    }
    if (best === labels[i]) right++;
  }
  return labels.length ? right / labels.length : NaN;
}

/** The largest margin on the 0.05 grid whose clean accuracy on these images is at most `maxDrop` below m = 0's. */
export function calibrateMargin(
  logits: Float32Array,
  labels: ArrayLike<number>,
  classes: number,
  cls: number,
  maxDrop: number,
): { margin: number; accuracyBefore: number; accuracyAfter: number } {
  const before = accuracyWith(logits, labels, classes, cls, 0);
  let margin = 0;
  let after = before;
  for (let i = 1; i * STEP <= MAX_MARGIN + 1e-9; i++) {
    const m = Math.round(i * STEP * 100) / 100;
    const acc = accuracyWith(logits, labels, classes, cls, m);
    if (before - acc <= maxDrop + 1e-12) [margin, after] = [m, acc];
  }
  return { margin, accuracyBefore: before, accuracyAfter: after };
}

/** The model with `margin` added to logit `cls` of its one output: a new Add node; the output keeps its name. */
export function withMargin(model: ModelProto, classes: number, cls: number, margin: number): ModelProto {
  const copy = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = copy.graph!;
  if (g.output?.length !== 1) throw new Error('a decision margin needs a model with one output (the logits)');
  const out = g.output[0].name!;
  const inner = `${out}__before_margin`;
  for (const n of g.node ?? []) n.output = n.output!.map((o) => (o === out ? inner : o));
  const offsets = new Float32Array(classes);
  offsets[cls] = margin;
  const name = `${out}__margin`;
  g.initializer = [...(g.initializer ?? []), tensor(name, offsets, [classes])];
  g.node = [
    ...(g.node ?? []),
    onnx.NodeProto.create({ opType: 'Add', input: [inner, name], output: [out], name: 'safety_margin' }),
  ];
  return copy;
}
