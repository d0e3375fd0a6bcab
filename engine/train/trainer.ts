// Training, plain or defended (FGSM with random start, PGD adversarial training), optionally on CutMix batches, with
// early stopping on robust validation accuracy and checkpoints that resume a run exactly: every random draw derives
// from (seed, epoch, step).
import type { InferenceSession } from 'onnxruntime-node';
import { pgd, type Batch, type Range } from '../attacks/attacks.js';
import { runAttack } from '../attacks/run.js';
import { differentiate } from '../autodiff/differentiate.js';
import type { ImageSet } from '../data/fashion.js';
import { InputError } from '../input-error.js';
import { computeMetrics } from '../metrics/metrics.js';
import { countCorrect } from '../metrics/predictions.js';
import type { Rng } from '../runtime/rng.js';
import { rngFor } from './rng-for.js';
import { createSession, floatTensor, int64Tensor } from '../runtime/session.js';
import { snapshot, type Checkpoint, type EpochRecord } from './checkpoint.js';
import { Optimizer, learningRate, type OptimizerKind, type Schedule } from './optim.js';
import { deployableModel, initWeights, trainableModel, type Architecture } from './zoo.js';
import { LiveModel } from './live-model.js';
import { checkCutMix, cutmix, type CutMixConfig } from './cutmix.js';
import { Teacher, checkDistill, distillSettings, oneHot, type DistillConfig } from './distill.js';

export type Defense =
  | { kind: 'none' }
  /** stepSize defaults to 1.25·eps (Wong et al.); PGD's to 2.5·eps/steps (Madry et al.). */
  | { kind: 'fgsm-rs'; eps: number; stepSize?: number }
  | { kind: 'pgd'; eps: number; steps?: number; stepSize?: number }
  /** TRADES: β weighs the KL term (default 6); steps and stepSize are the inner maximisation's (7, 2.5·eps/steps). */
  | { kind: 'trades'; eps: number; beta?: number; steps?: number; stepSize?: number };

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  lr: number;
}

export interface TrainOptions {
  arch: Architecture;
  data: ImageSet;
  epochs: number;
  batch?: number;
  /** Peak learning rate (default 1e-3). */
  lr?: number;
  optimizer?: OptimizerKind;
  schedule?: Schedule;
  weightDecay?: number;
  seed?: number;
  threads?: number;
  defense?: Defense;
  /** CutMix every batch with probability prob: soft labels through the soft cross-entropy; attacks ascend it too. */
  cutmix?: CutMixConfig;
  /**
   * Distillation (Hinton et al. 2015) from a teacher's logits softened at `temperature`, its soft term weighted by
   * `alpha`; without a teacher, training at temperature T (the teacher of defensive distillation; alpha must be 1).
   */
  distill?: DistillConfig;
  range?: Range;
  /**
   * Early stopping: robust accuracy under PGD-`steps` on a held-out set after each epoch; the best epoch is kept.
   * With `minClean`, the best among epochs whose clean accuracy on that set reaches it (when none does, the
   * cleanest epoch), so robustness is not bought below a clean-accuracy floor.
   */
  earlyStop?: { validation: ImageSet; eps: number; steps?: number; minClean?: number };
  /** Write a checkpoint every N steps (and at every epoch end). */
  checkpointEvery?: number;
  onCheckpoint?: (c: Checkpoint) => Promise<void>;
  resume?: Checkpoint;
  /** Weights to start from instead of a seeded initialisation (a federated client starts from the global model). */
  init?: Map<string, Float32Array>;
  onProgress?: (p: TrainProgress) => void;
  onEpoch?: (r: EpochRecord) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  /** Weights after the last epoch. */
  weights: Map<string, Float32Array>;
  /** The weights to deploy: the best epoch's under early stopping, else the last. */
  deploy: Map<string, Float32Array>;
  history: EpochRecord[];
  bestEpoch?: number;
}

/** Attack passes per weight update: TRADES adds a forward for its clean prediction; early stopping alone runs none. */
function attackPasses(d: Defense): number {
  if (d.kind === 'none') return 0;
  if (d.kind === 'fgsm-rs') return 1;
  return (d.steps ?? 7) + (d.kind === 'trades' ? 1 : 0);
}

/**
 * The adversarial half of a TRADES batch: PGD ascending KL(p ‖ softmax(f(x'))) from a small Gaussian start, where p
 * is the model's prediction on the clean batch, held fixed during the inner maximisation.
 */
async function tradesAdversary(
  live: LiveModel,
  b: Batch,
  d: Extract<Defense, { kind: 'trades' }>,
  range: Range,
  rng: Rng,
): Promise<Float32Array> {
  const p = await live.logits(b.x, b.n);
  for (let i = 0; i < b.n; i++) softmaxInPlace(p.subarray(i * live.classes, (i + 1) * live.classes));
  return pgd(live, b, {
    eps: d.eps,
    steps: d.steps ?? 7,
    stepSize: d.stepSize,
    startNoise: 0.001,
    loss: 'soft-cross-entropy',
    lossTargets: p,
    range,
    rng,
  });
}

function softmaxInPlace(z: Float32Array): void {
  const max = z.reduce((a, b) => Math.max(a, b), -Infinity);
  let sum = 0;
  for (let j = 0; j < z.length; j++) sum += z[j] = Math.exp(z[j] - max);
  for (let j = 0; j < z.length; j++) z[j] /= sum;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { arch, data } = opts;
  const batch = opts.batch ?? 128;
  const seed = opts.seed ?? 1;
  const defense = opts.defense ?? { kind: 'none' };
  const range = opts.range ?? { min: 0, max: 1 };
  const settings = {
    arch: arch.name,
    batch,
    lr: opts.lr ?? 1e-3,
    optimizer: opts.optimizer ?? 'adam',
    schedule: opts.schedule ?? 'constant',
    weightDecay: opts.weightDecay ?? 0,
    defense,
    epochs: opts.epochs,
    images: data.count,
    ...(opts.cutmix ? { cutmix: opts.cutmix } : {}),
    ...(opts.distill ? { distill: distillSettings(opts.distill) } : {}),
  };
  const r = opts.resume;
  if (r) {
    for (const [k, v] of Object.entries(settings)) {
      if (JSON.stringify(r.settings[k]) !== JSON.stringify(v))
        throw new InputError(
          `cannot resume: the checkpoint was made with ${k} = ${JSON.stringify(r.settings[k])}, not ${JSON.stringify(v)}`,
        );
    }
  }
  if (data.count === 0) throw new InputError('the training set is empty');
  if (opts.cutmix) {
    checkCutMix(opts.cutmix);
    // TRADES's loss compares clean and adversarial predictions against hard labels; mixing it is not built.
    if (defense.kind === 'trades') throw new InputError('cutmix: combining CutMix with TRADES is not built yet');
  }
  const weights = r
    ? r.weights
    : opts.init
      ? new Map([...opts.init].map(([k, v]) => [k, v.slice()]))
      : initWeights(arch, rngFor(seed, -1));
  const optimizer = new Optimizer({ kind: settings.optimizer, weightDecay: settings.weightDecay }, r?.optimizer);
  const history: EpochRecord[] = r ? [...r.history] : [];
  let best = r?.best;

  const model = trainableModel(arch);
  // TRADES trains on [clean; adversarial] rows at once, differentiated through both.
  if (opts.distill) checkDistill(opts.distill, defense.kind, !!opts.cutmix);
  const teacher = opts.distill?.teacher ? await Teacher.create(opts.distill, arch, opts.threads) : undefined;
  const trainGraph = differentiate(model, {
    wrt: arch.params.map((p) => p.name),
    ...(defense.kind === 'trades' && { loss: 'trades', beta: defense.beta }),
    ...(opts.cutmix && { loss: 'soft-cross-entropy' }),
    ...(opts.distill && { loss: 'distill', temperature: opts.distill.temperature, alpha: opts.distill.alpha }),
  });
  const session = await createSession(trainGraph.model, { threads: opts.threads });
  // With no defense the live model only serves early stopping's PGD-10, once per epoch: baked then.
  const live =
    defense.kind !== 'none' || opts.earlyStop
      ? new LiveModel(arch, weights, attackPasses(defense) !== 1, opts.threads)
      : undefined;
  const pixels = arch.input.reduce((a, b) => a * b, 1);
  const steps = Math.ceil(data.count / batch);
  const total = steps * opts.epochs;
  const checkpoint = (epoch: number, step: number, partial: { lossSum: number; correct: number; seen: number }) =>
    snapshot({
      arch: arch.name,
      seed,
      epoch,
      step,
      weights,
      optimizer: optimizer.state,
      history,
      best,
      settings: { ...settings, partial },
    });
  try {
    for (let epoch = (r?.epoch ?? 0) + 1; epoch <= opts.epochs; epoch++) {
      const order = rngFor(seed, epoch).shuffle(data.count);
      const resuming = r && epoch === r.epoch + 1 && r.step > 0;
      const partial = resuming
        ? (r.settings.partial as { lossSum: number; correct: number; seen: number })
        : { lossSum: 0, correct: 0, seen: 0 };
      let { lossSum, correct, seen } = partial;
      const started = performance.now();
      let ranHere = 0;
      for (let step = resuming ? r.step : 0; step < steps; step++) {
        if (opts.signal?.aborted) throw new Error('training was cancelled');
        const idx = order.subarray(step * batch, Math.min(data.count, (step + 1) * batch));
        const n = idx.length;
        let x: Float32Array = new Float32Array(n * pixels);
        const y = new Array<number>(n);
        idx.forEach((k, i) => {
          x.set(data.images.subarray(k * pixels, (k + 1) * pixels), i * pixels);
          y[i] = data.labels[k];
        });
        let rows = n;
        // Its own stream (seed + 1): the attack's draws stay what they were without CutMix.
        const mixed = opts.cutmix
          ? cutmix(x, y, n, arch.input, arch.classes, opts.cutmix, rngFor(seed + 1, epoch, step))
          : undefined;
        if (mixed) x = mixed.x;
        if (defense.kind !== 'none') {
          const b = { x, labels: y, n };
          const soft = mixed ? { loss: 'soft-cross-entropy' as const, lossTargets: mixed.targets } : {};
          const rng = rngFor(seed, epoch, step);
          if (defense.kind === 'trades') {
            const adv = await tradesAdversary(live!, b, defense, range, rng);
            const both = new Float32Array(2 * x.length);
            both.set(x);
            both.set(adv, x.length);
            x = both;
            rows = 2 * n;
          } else {
            x =
              defense.kind === 'fgsm-rs'
                ? await pgd(live!, b, {
                    eps: defense.eps,
                    steps: 1,
                    stepSize: defense.stepSize ?? 1.25 * defense.eps,
                    randomStart: true,
                    range,
                    rng,
                    ...soft,
                  })
                : await pgd(live!, b, {
                    eps: defense.eps,
                    steps: defense.steps ?? 7,
                    stepSize: defense.stepSize,
                    randomStart: true,
                    range,
                    rng,
                    ...soft,
                  });
          }
        }
        const feeds: Record<string, ReturnType<typeof floatTensor>> = {
          input: floatTensor(x, [rows, ...arch.input]),
          [trainGraph.labels]: int64Tensor(y, [n]),
          ...(mixed && { [trainGraph.targets!]: floatTensor(mixed.targets, [n, arch.classes]) }),
          ...(opts.distill && {
            [trainGraph.targets!]: floatTensor(teacher ? await teacher.soft(x, n) : oneHot(y, arch.classes), [
              n,
              arch.classes,
            ]),
          }),
        };
        for (const p of arch.params) feeds[p.name] = floatTensor(weights.get(p.name)!, p.dims);
        const out = await session.run(feeds);
        const loss = (out[trainGraph.loss].data as Float32Array)[0];
        // Stop before a diverged step touches the weights, so the last checkpoint stays the last good state.
        if (!Number.isFinite(loss))
          throw new InputError(
            `the loss became ${loss} at epoch ${epoch}, step ${step + 1}; lower the learning rate (now ${settings.lr}) or check the data`,
          );
        const lr = learningRate(settings.schedule, settings.lr, (epoch - 1) * steps + step, total);
        optimizer.step(
          weights,
          new Map(arch.params.map((p) => [p.name, out[trainGraph.grads[p.name]].data as Float32Array])),
          lr,
        );
        live?.changed();
        lossSum += loss * n;
        // Under TRADES the first n rows are the clean ones, so this is clean accuracy; under AT it is adversarial.
        correct += countCorrect(out[trainGraph.logits].data as Float32Array, y, arch.classes);
        seen += n;
        ranHere += n;
        if (opts.onProgress && (step % 20 === 19 || step === steps - 1)) {
          opts.onProgress({
            epoch,
            epochs: opts.epochs,
            step: step + 1,
            steps,
            loss: lossSum / seen,
            accuracy: correct / seen,
            imagesPerSecond: ranHere / ((performance.now() - started) / 1000),
            lr,
          });
        }
        if (opts.onCheckpoint && opts.checkpointEvery && (step + 1) % opts.checkpointEvery === 0 && step + 1 < steps) {
          await opts.onCheckpoint(checkpoint(epoch - 1, step + 1, { lossSum, correct, seen }));
        }
      }
      const record: EpochRecord = {
        epoch,
        loss: lossSum / seen,
        accuracy: correct / seen,
        seconds: (performance.now() - started) / 1000,
      };
      if (opts.earlyStop) {
        const v = opts.earlyStop;
        const results = await runAttack(
          live!,
          v.validation,
          { attack: 'pgd', eps: v.eps, steps: v.steps ?? 10 },
          { range, seed: seed + epoch },
        );
        const m = computeMetrics(results, arch.classes);
        record.robustValidation = m.robust_accuracy;
        record.cleanValidation = m.clean_accuracy;
        if (!best || betterEpoch(record, best, v.minClean))
          best = {
            epoch,
            robustValidation: record.robustValidation,
            cleanValidation: record.cleanValidation,
            weights: new Map([...weights].map(([k, w]) => [k, w.slice()])),
          };
      }
      history.push(record);
      opts.onEpoch?.(record);
      await opts.onCheckpoint?.(checkpoint(epoch, 0, { lossSum: 0, correct: 0, seen: 0 }));
    }
  } finally {
    await live?.release();
    await teacher?.release();
    await session.release();
  }
  return { weights, deploy: best?.weights ?? weights, history, bestEpoch: best?.epoch };
}

/**
 * Whether early stopping prefers this epoch to the best so far: above the clean floor beats below it; above it the
 * more robust wins; below it the cleaner (ties keep the earlier epoch).
 */
export function betterEpoch(
  r: { robustValidation?: number; cleanValidation?: number },
  best: { robustValidation: number; cleanValidation?: number },
  minClean: number | undefined,
): boolean {
  const robust = r.robustValidation ?? -1;
  if (minClean === undefined) return robust > best.robustValidation;
  const clean = r.cleanValidation ?? -1;
  const bestClean = best.cleanValidation ?? -1;
  const [ok, bestOk] = [clean >= minClean, bestClean >= minClean];
  if (ok !== bestOk) return ok;
  return ok ? robust > best.robustValidation : clean > bestClean;
}

/** Clean accuracy of a deployable model on a set. */
export async function accuracy(
  session: InferenceSession,
  data: ImageSet,
  classes: number,
  batch = 1000,
): Promise<number> {
  const pixels = data.shape.reduce((a, b) => a * b, 1);
  let correct = 0;
  for (let s = 0; s < data.count; s += batch) {
    const n = Math.min(batch, data.count - s);
    const out = await session.run({
      [session.inputNames[0]]: floatTensor(data.images.subarray(s * pixels, (s + n) * pixels), [n, ...data.shape]),
    });
    correct += countCorrect(out[session.outputNames[0]].data as Float32Array, data.labels.subarray(s, s + n), classes);
  }
  return correct / data.count;
}

export { deployableModel };
