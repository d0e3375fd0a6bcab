// `secmlops train --defense dp-sgd`: differentially private training, with the (ε, δ) the accountant gives for it.
import { writeFile } from 'node:fs/promises';
import { loadSplit } from '../engine/data/fashion.js';
import { saveModel } from '../engine/onnx/model.js';
import { PrivacyParameterError, noiseFor } from '../engine/privacy/rdp.js';
import { createSession } from '../engine/runtime/session.js';
import { checkDpSettings, trainDpSgd, type DpSgdSettings } from '../engine/train/dp-sgd.js';
import { accuracy } from '../engine/train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../engine/train/zoo.js';
import { progressBar } from './render.js';
import { UsageError } from './usage-error.js';

export interface DpTrainCommand {
  data: string;
  arch: string;
  epochs: number;
  lr: number;
  optimizer: string;
  schedule: string;
  limit?: number;
  seed: number;
  out: string;
  noiseMultiplier?: number;
  clip?: number;
  sampleRate?: number;
  delta: number;
  targetEpsilon?: number;
  json?: string;
}

/** The DP settings from the options; σ from --target-epsilon when --noise-multiplier is not given. */
export function dpSettings(o: DpTrainCommand): DpSgdSettings {
  if (o.clip === undefined) throw new UsageError('--defense dp-sgd needs --clip C (the per-example gradient norm)');
  if (o.sampleRate === undefined)
    throw new UsageError('--defense dp-sgd needs --sample-rate Q (batch size / training set size)');
  let sigma = o.noiseMultiplier;
  try {
    if (sigma === undefined) {
      if (o.targetEpsilon === undefined)
        throw new UsageError('--defense dp-sgd needs --noise-multiplier S or --target-epsilon EPS');
      sigma = noiseFor(o.sampleRate, o.epochs, o.targetEpsilon, o.delta);
    }
    const dp = { noiseMultiplier: sigma, clip: o.clip, sampleRate: o.sampleRate, delta: o.delta };
    checkDpSettings(dp);
    return dp;
  } catch (e) {
    if (e instanceof PrivacyParameterError || (e as { option?: string }).option)
      throw new UsageError((e as Error).message);
    throw e;
  }
}

export async function dpTrainCommand(o: DpTrainCommand): Promise<void> {
  const arch = ARCHITECTURES[o.arch];
  if (!arch) throw new UsageError(`--arch: expected ${Object.keys(ARCHITECTURES).join(', ')}, got "${o.arch}"`);
  if (o.optimizer !== 'adam' && o.optimizer !== 'sgd')
    throw new UsageError(`--optimizer must be adam or sgd, not "${o.optimizer}"`);
  if (!['constant', 'cosine', 'one-cycle'].includes(o.schedule))
    throw new UsageError(`--schedule must be constant, cosine or one-cycle, not "${o.schedule}"`);
  const dp = dpSettings(o);
  const data = await loadSplit(o.data, 'train', { limit: o.limit });
  const test = await loadSplit(o.data, 'test');
  console.error(
    `DP-SGD: ${arch.name} on ${data.count} images, ${o.epochs} epochs, Poisson sampling q = ${dp.sampleRate} ` +
      `(about ${Math.round(dp.sampleRate * data.count)} per batch), clip ${dp.clip}, noise multiplier ${dp.noiseMultiplier}`,
  );
  const result = await trainDpSgd({
    arch,
    data,
    epochs: o.epochs,
    lr: o.lr,
    optimizer: o.optimizer,
    schedule: o.schedule as 'constant' | 'cosine' | 'one-cycle',
    seed: o.seed,
    dp,
    onProgress: (p) => {
      const line =
        `epoch ${p.epoch}/${p.epochs} ${progressBar(p.step, p.steps)} loss ${p.loss.toFixed(4)} ` +
        `acc ${(p.accuracy * 100).toFixed(1)}% ${Math.round(p.imagesPerSecond)} img/s`;
      process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
    },
    onEpoch: (r) =>
      process.stderr.write(
        `${process.stderr.isTTY ? '\n' : ''}epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, accuracy ${(r.accuracy * 100).toFixed(2)}%, ${r.seconds.toFixed(0)} s\n`,
      ),
  });
  const model = deployableModel(arch, result.deploy);
  await writeFile(o.out, saveModel(model));
  const acc = await accuracy(await createSession(model), test, arch.classes);
  const p = result.privacy;
  console.log(
    `wrote ${o.out}: ${(acc * 100).toFixed(2)}% clean accuracy on the ${test.count} test images; ` +
      `(ε, δ) = (${p.epsilon.toFixed(3)}, ${p.delta}) after ${p.steps} steps (RDP order ${p.order})`,
  );
  if (o.json)
    await writeFile(
      o.json,
      `${JSON.stringify({ model: o.out, testAccuracy: acc, history: result.history, privacy: p }, null, 2)}\n`,
    );
}
