// Central finite differences against the emitted gradient graph, both run by onnxruntime.
import { differentiate, type LossKind } from '../../engine/autodiff/differentiate.js';
import { GraphBuilder, tensorValues } from '../../engine/onnx/builder.js';
import type { ModelProto } from '../../engine/onnx/proto.js';
import { Rng } from '../../engine/runtime/rng.js';
import { createSession, floatTensor, int64Tensor } from '../../engine/runtime/session.js';

/** Uniform in ±scale, kept at least `gap` from zero so ReLU-like kinks are not crossed by the step. */
export function randomArray(rng: Rng, n: number, scale = 1, gap = 0.05): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const v = (rng.next() * 2 - 1) * scale;
    return Math.sign(v || 1) * Math.max(Math.abs(v), gap);
  });
}

export interface Case {
  /** Input shape of x; the graph maps x (and any weights) to the logits. */
  x: number[];
  build: (g: GraphBuilder, x: string, rng: Rng) => string;
  /** Initializers to check too. */
  weights?: boolean;
  loss?: LossKind;
  /** Distillation's temperature and soft-term weight. */
  temperature?: number;
  alpha?: number;
  opset?: number;
}

export interface CheckResult {
  name: string;
  worst: number;
  checked: number;
}

const H = 1e-3;

/** Returns the worst relative error over sampled coordinates of each gradient. */
export async function gradcheck(c: Case, seed = 1): Promise<CheckResult[]> {
  const rng = new Rng(seed);
  const g = new GraphBuilder();
  const x = g.input('x', c.x);
  const out = c.build(g, x, rng);
  const flat = g.op('Flatten', [out], { axis: 1 });
  g.output(flat);
  const forward = g.build({ opset: c.opset ?? 17 });
  const weights = c.weights
    ? forward
        .graph!.initializer!.filter((t) => t.dataType === 1 && !t.name!.startsWith('c_') && !t.name!.startsWith('i_'))
        .map((t) => t.name!)
    : [];
  const grad = differentiate(forward, {
    wrt: ['x', ...weights],
    loss: c.loss,
    ...(c.temperature !== undefined && { temperature: c.temperature }),
    ...(c.alpha !== undefined && { alpha: c.alpha }),
  });
  const session = await createSession(grad.model, { threads: 1 });
  const xData = randomArray(
    rng,
    c.x.reduce((a, b) => a * b, 1),
  );
  const probe = await (await createSession(forward, { threads: 1 })).run({ x: floatTensor(xData, c.x) });
  const [batch, classes] = probe[flat].dims;
  // TRADES's logits are N clean rows then N adversarial rows, labelled once.
  const labels = Array.from({ length: c.loss === 'trades' ? batch / 2 : batch }, () =>
    Math.floor(rng.next() * classes),
  );
  const extra: Record<string, ReturnType<typeof floatTensor>> = {};
  if (c.loss === 'soft-cross-entropy' || c.loss === 'distill')
    extra[grad.targets!] = floatTensor(randomProbabilities(rng, batch, classes), [batch, classes]);
  if (c.loss === 'target-margin')
    extra[grad.targets!] = int64Tensor(
      labels.map((y) => (y + 1) % classes),
      [batch],
    );
  const feeds = (xd: Float32Array) => ({
    x: floatTensor(xd, c.x),
    [grad.labels]: int64Tensor(labels, [labels.length]),
    ...extra,
  });
  const analytic = await session.run(feeds(xData));

  const lossAt = async (m: ModelProto, xd: Float32Array) => {
    const s = m === grad.model ? session : await createSession(m, { threads: 1 });
    return ((await s.run(feeds(xd)))[grad.loss].data as Float32Array)[0];
  };
  const results: CheckResult[] = [];
  for (const name of ['x', ...weights]) {
    const a = analytic[grad.grads[name]].data as Float32Array;
    const picks = pickCoordinates(a, rng);
    let worst = 0;
    for (const i of picks) {
      let numeric: number;
      if (name === 'x') {
        const plus = xData.slice();
        const minus = xData.slice();
        plus[i] += H;
        minus[i] -= H;
        numeric = ((await lossAt(grad.model, plus)) - (await lossAt(grad.model, minus))) / (2 * H);
      } else {
        numeric =
          ((await lossAt(withWeight(grad.model, name, i, H), xData)) -
            (await lossAt(withWeight(grad.model, name, i, -H), xData))) /
          (2 * H);
      }
      worst = Math.max(worst, Math.abs(numeric - a[i]) / Math.max(1e-2, Math.abs(numeric) + Math.abs(a[i])));
    }
    results.push({ name, worst, checked: picks.length });
  }
  return results;
}

function randomProbabilities(rng: Rng, rows: number, classes: number): Float32Array {
  const p = Float32Array.from({ length: rows * classes }, () => Math.exp(rng.next() * 3));
  for (let r = 0; r < rows; r++) {
    const row = p.subarray(r * classes, (r + 1) * classes);
    const sum = row.reduce((a, b) => a + b, 0);
    row.forEach((v, k) => (row[k] = v / sum));
  }
  return p;
}

/** The largest gradients (where a wrong rule shows most) plus random ones. */
function pickCoordinates(a: Float32Array, rng: Rng): number[] {
  const idx = Array.from(a.keys()).sort((p, q) => Math.abs(a[q]) - Math.abs(a[p]));
  const picks = new Set(idx.slice(0, 4));
  while (picks.size < Math.min(10, a.length)) picks.add(Math.floor(rng.next() * a.length));
  return [...picks];
}

function withWeight(model: ModelProto, name: string, i: number, delta: number): ModelProto {
  const initializer = model.graph!.initializer!.map((t) => {
    if (t.name !== name) return t;
    const v = Float32Array.from(tensorValues(t) as Float32Array);
    v[i] += delta;
    return { ...t, rawData: new Uint8Array(v.buffer), floatData: [] };
  });
  return { ...model, graph: { ...model.graph, initializer } };
}

export { Rng };
