// Knowledge distillation (Hinton, Vinyals, Dean 2015): the student matches the teacher's softened predictions at
// temperature T and, with weight 1 − α, the hard labels at T = 1:
//   loss = α·T²·mean −Σ p·log softmax(z/T) + (1 − α)·mean CE(z, y),   p = softmax(teacher/T) fed as `targets`.
// T² keeps the soft term's gradient on the scale of the hard one's (the paper's advice). Its gradient in z:
//   α·T·(softmax(z/T) − p)/N + (1 − α)·(softmax(z) − onehot(y))/N.
// With α = 1 and p = onehot(y) it is T²·CE(z/T, y): a network trained at temperature T (defensive distillation).
import type { GraphBuilder } from '../onnx/builder.js';
import { DataType } from '../onnx/proto.js';

export function addDistill(
  g: GraphBuilder,
  logits: string,
  labels: string,
  classes: number,
  targets: string,
  temperature: number,
  alpha: number,
): { loss: string; dLogits: string } {
  const batch = g.op('Cast', [g.op('Gather', [g.op('Shape', [logits]), g.constI64([0])])], { to: DataType.FLOAT });
  const scaled = g.op('Div', [logits, g.constF([temperature], [])]);
  const meanOfRows = (v: string) =>
    g.op('Neg', [g.op('ReduceMean', [g.op('ReduceSum', [v, g.constI64([1])], { keepdims: 0 })], { keepdims: 0 })]);
  const soft = meanOfRows(g.op('Mul', [targets, g.op('LogSoftmax', [scaled], { axis: 1 })]));
  const oneHot = g.op('OneHot', [labels, g.constI64([classes]), g.constF([0, 1])], { axis: -1 });
  const hard = meanOfRows(g.op('Mul', [oneHot, g.op('LogSoftmax', [logits], { axis: 1 })]));
  const loss = g.op(
    'Add',
    [
      g.op('Mul', [soft, g.constF([alpha * temperature * temperature], [])]),
      g.op('Mul', [hard, g.constF([1 - alpha], [])]),
    ],
    {},
    ['loss'],
  );
  const dSoft = g.op('Mul', [
    g.op('Sub', [g.op('Softmax', [scaled], { axis: 1 }), targets]),
    g.constF([alpha * temperature], []),
  ]);
  const dHard = g.op('Mul', [g.op('Sub', [g.op('Softmax', [logits], { axis: 1 }), oneHot]), g.constF([1 - alpha], [])]);
  return { loss, dLogits: g.op('Div', [g.op('Add', [dSoft, dHard]), batch]) };
}
