// DP-SGD (Abadi et al. 2016): every step takes a Poisson sample of the training set (each example with probability
// q, so batches vary in size, as the accountant assumes), clips each example's gradient to norm C inside the
// gradient graph, adds Gaussian noise of standard deviation σ·C to the sum and divides by the expected batch size
// q·n; then any of the engine's optimizers steps. The sampling and the noise come from generators keyed by (seed,
// epoch, step) and checkpoints hold the step reached, so a resumed run repeats the same steps and its ε is right.
import { differentiate } from '../autodiff/differentiate.js';
import { InputError } from '../input-error.js';
import { epsilon, stepsFor, type Spent } from '../privacy/rdp.js';
import { createSession, floatTensor, int64Tensor } from '../runtime/session.js';
import { snapshot, type Checkpoint, type EpochRecord } from './checkpoint.js';
import { Optimizer, learningRate } from './optim.js';
import { rngFor } from './rng-for.js';
import { countCorrect } from '../metrics/predictions.js';
import type { TrainOptions, TrainResult } from './trainer.js';
import { initWeights, trainableModel } from './zoo.js';

export interface DpSgdSettings {
  noiseMultiplier: number;
  /** C: the largest L2 norm one example's gradient may contribute. */
  clip: number;
  /** q: each example joins each step's batch with this probability; an epoch is ceil(1/q) steps. */
  sampleRate: number;
  delta: number;
}

export type DpTrainOptions = Omit<TrainOptions, 'defense' | 'earlyStop' | 'batch'> & { dp: DpSgdSettings };

export interface DpTrainResult extends TrainResult {
  privacy: Spent & DpSgdSettings & { steps: number };
}

export function checkDpSettings(dp: DpSgdSettings): void {
  const fail = (option: string, detail: string) => {
    throw Object.assign(new InputError(`${option}: ${detail}`), { option });
  };
  if (!(dp.noiseMultiplier > 0)) fail('--noise-multiplier', `must be above 0, got ${dp.noiseMultiplier}`);
  if (!(dp.clip > 0)) fail('--clip', `must be above 0, got ${dp.clip}`);
  if (!(dp.sampleRate > 0 && dp.sampleRate <= 1)) fail('--sample-rate', `must be in (0, 1], got ${dp.sampleRate}`);
  if (!(dp.delta > 0 && dp.delta < 1)) fail('--delta', `must be in (0, 1), got ${dp.delta}`);
}

export async function trainDpSgd(opts: DpTrainOptions): Promise<DpTrainResult> {
  const { arch, data, dp } = opts;
  checkDpSettings(dp);
  if (data.count === 0) throw new InputError('the training set is empty');
  const seed = opts.seed ?? 1;
  const settings = {
    arch: arch.name,
    lr: opts.lr ?? 1e-3,
    optimizer: opts.optimizer ?? 'adam',
    schedule: opts.schedule ?? 'constant',
    weightDecay: opts.weightDecay ?? 0,
    defense: { kind: 'dp-sgd', ...dp },
    epochs: opts.epochs,
    images: data.count,
  };
  const r = opts.resume;
  if (r)
    for (const [k, v] of Object.entries(settings))
      if (JSON.stringify(r.settings[k]) !== JSON.stringify(v))
        throw new InputError(
          `cannot resume: the checkpoint was made with ${k} = ${JSON.stringify(r.settings[k])}, ` +
            `not ${JSON.stringify(v)}`,
        );
  const weights = r ? r.weights : initWeights(arch, rngFor(seed, -1));
  const optimizer = new Optimizer({ kind: settings.optimizer, weightDecay: settings.weightDecay }, r?.optimizer);
  const history: EpochRecord[] = r ? [...r.history] : [];
  const graph = differentiate(trainableModel(arch), { wrt: arch.params.map((p) => p.name), perExample: 'clipped' });
  const session = await createSession(graph.model, { threads: opts.threads });
  const pixels = arch.input.reduce((a, b) => a * b, 1);
  const steps = stepsFor(dp.sampleRate, 1);
  const total = steps * opts.epochs;
  const expected = dp.sampleRate * data.count;
  const clip = floatTensor(new Float32Array([dp.clip]), []);
  const checkpoint = (epoch: number, step: number, partial: Partial): Checkpoint =>
    snapshot({
      arch: arch.name,
      seed,
      epoch,
      step,
      weights,
      optimizer: optimizer.state,
      history,
      settings: { ...settings, partial },
    });
  try {
    for (let epoch = (r?.epoch ?? 0) + 1; epoch <= opts.epochs; epoch++) {
      const resuming = r && epoch === r.epoch + 1 && r.step > 0;
      let { lossSum, correct, seen } = resuming ? (r.settings.partial as Partial) : { lossSum: 0, correct: 0, seen: 0 };
      const started = performance.now();
      let ranHere = 0;
      for (let step = resuming ? r.step : 0; step < steps; step++) {
        if (opts.signal?.aborted) throw new Error('training was cancelled');
        const rng = rngFor(seed, epoch, step);
        const picked: number[] = [];
        for (let i = 0; i < data.count; i++) if (rng.next() < dp.sampleRate) picked.push(i);
        const n = picked.length;
        const sums = new Map(arch.params.map((p) => [p.name, new Float32Array(p.dims.reduce((a, b) => a * b, 1))]));
        if (n > 0) {
          const x = new Float32Array(n * pixels);
          const y = picked.map((k, i) => {
            x.set(data.images.subarray(k * pixels, (k + 1) * pixels), i * pixels);
            return data.labels[k];
          });
          const feeds = {
            input: floatTensor(x, [n, ...arch.input]),
            [graph.labels]: int64Tensor(y, [n]),
            [graph.clip!]: clip,
          } as Record<string, ReturnType<typeof floatTensor>>;
          for (const p of arch.params) feeds[p.name] = floatTensor(weights.get(p.name)!, p.dims);
          const out = await session.run(feeds);
          const loss = (out[graph.loss].data as Float32Array)[0];
          if (!Number.isFinite(loss))
            throw new InputError(
              `the loss became ${loss} at epoch ${epoch}, step ${step + 1}; ` +
                `lower the learning rate (now ${settings.lr})`,
            );
          for (const p of arch.params) sums.get(p.name)!.set(out[graph.grads[p.name]].data as Float32Array);
          lossSum += loss * n;
          correct += countCorrect(out[graph.logits].data as Float32Array, y, arch.classes);
          seen += n;
          ranHere += n;
        }
        // The noise is drawn even for an empty sample: the mechanism the accountant describes releases it anyway.
        const sd = dp.noiseMultiplier * dp.clip;
        for (const g of sums.values()) for (let k = 0; k < g.length; k++) g[k] = (g[k] + sd * rng.normal()) / expected;
        const lr = learningRate(settings.schedule, settings.lr, (epoch - 1) * steps + step, total);
        optimizer.step(weights, sums, lr);
        if (opts.onProgress && (step % 20 === 19 || step === steps - 1))
          opts.onProgress({
            epoch,
            epochs: opts.epochs,
            step: step + 1,
            steps,
            loss: seen ? lossSum / seen : NaN,
            accuracy: seen ? correct / seen : NaN,
            imagesPerSecond: ranHere / ((performance.now() - started) / 1000),
            lr,
          });
        if (opts.onCheckpoint && opts.checkpointEvery && (step + 1) % opts.checkpointEvery === 0 && step + 1 < steps)
          await opts.onCheckpoint(checkpoint(epoch - 1, step + 1, { lossSum, correct, seen }));
      }
      const record: EpochRecord = {
        epoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        seconds: (performance.now() - started) / 1000,
      };
      history.push(record);
      opts.onEpoch?.(record);
      await opts.onCheckpoint?.(checkpoint(epoch, 0, { lossSum: 0, correct: 0, seen: 0 }));
    }
  } finally {
    await session.release();
  }
  const done = total;
  const spent = epsilon({ sampleRate: dp.sampleRate, noiseMultiplier: dp.noiseMultiplier, steps: done }, dp.delta);
  return { weights, deploy: weights, history, privacy: { ...spent, ...dp, steps: done } };
}

type Partial = { lossSum: number; correct: number; seen: number };
