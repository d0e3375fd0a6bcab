// A plain (undefended) trainer: minibatch Adam on the emitted gradient graph, enough to produce the example model.
import type { InferenceSession } from 'onnxruntime-node';
import { differentiate } from '../autodiff/differentiate.js';
import type { ImageSet } from '../data/fashion.js';
import { Rng } from '../runtime/rng.js';
import { createSession, floatTensor, int64Tensor } from '../runtime/session.js';
import { Adam } from './adam.js';
import { deployableModel, initWeights, trainableModel, type Architecture } from './zoo.js';

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface TrainOptions {
  arch: Architecture;
  data: ImageSet;
  epochs: number;
  batch?: number;
  lr?: number;
  seed?: number;
  threads?: number;
  onProgress?: (p: TrainProgress) => void;
}

export async function train(opts: TrainOptions): Promise<Map<string, Float32Array>> {
  const { arch, data } = opts;
  const batch = opts.batch ?? 128;
  const rng = new Rng(opts.seed ?? 1);
  const weights = initWeights(arch, rng);
  const grad = differentiate(trainableModel(arch), { wrt: arch.params.map((p) => p.name) });
  const session = await createSession(grad.model, { threads: opts.threads });
  const adam = new Adam(opts.lr ?? 1e-3);
  const pixels = arch.input.reduce((a, b) => a * b, 1);
  const steps = Math.ceil(data.count / batch);
  for (let epoch = 1; epoch <= opts.epochs; epoch++) {
    const order = rng.shuffle(data.count);
    let seen = 0;
    let lossSum = 0;
    let correct = 0;
    const started = performance.now();
    for (let step = 0; step < steps; step++) {
      const idx = order.subarray(step * batch, Math.min(data.count, (step + 1) * batch));
      const n = idx.length;
      const x = new Float32Array(n * pixels);
      const y = new Array<number>(n);
      idx.forEach((k, i) => {
        x.set(data.images.subarray(k * pixels, (k + 1) * pixels), i * pixels);
        y[i] = data.labels[k];
      });
      const feeds: Record<string, ReturnType<typeof floatTensor>> = { input: floatTensor(x, [n, ...arch.input]), [grad.labels]: int64Tensor(y, [n]) };
      for (const p of arch.params) feeds[p.name] = floatTensor(weights.get(p.name)!, p.dims);
      const out = await session.run(feeds);
      adam.step(weights, new Map(arch.params.map((p) => [p.name, out[grad.grads[p.name]].data as Float32Array])));
      lossSum += (out[grad.loss].data as Float32Array)[0] * n;
      correct += countCorrect(out[grad.logits].data as Float32Array, y, arch.classes);
      seen += n;
      if (opts.onProgress && (step % 20 === 19 || step === steps - 1)) {
        opts.onProgress({ epoch, epochs: opts.epochs, step: step + 1, steps, loss: lossSum / seen, accuracy: correct / seen, imagesPerSecond: seen / ((performance.now() - started) / 1000) });
      }
    }
  }
  return weights;
}

export function countCorrect(logits: Float32Array, labels: ArrayLike<number>, classes: number): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (argmax(logits, i * classes, classes) === labels[i]) correct++;
  return correct;
}

export function argmax(values: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let j = 1; j < n; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}

/** Clean accuracy of a deployable model on a set. */
export async function accuracy(session: InferenceSession, data: ImageSet, classes: number, batch = 1000): Promise<number> {
  const pixels = data.shape.reduce((a, b) => a * b, 1);
  let correct = 0;
  for (let s = 0; s < data.count; s += batch) {
    const n = Math.min(batch, data.count - s);
    const out = await session.run({ [session.inputNames[0]]: floatTensor(data.images.subarray(s * pixels, (s + n) * pixels), [n, ...data.shape]) });
    correct += countCorrect(out[session.outputNames[0]].data as Float32Array, data.labels.subarray(s, s + n), classes);
  }
  return correct / data.count;
}

export { deployableModel };
