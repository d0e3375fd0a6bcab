// Finding poison end to end: a reference model (given, or trained here on the suspect data), its penultimate
// activations, and a detector. Shared by `secmlops detect-poison` and the data stage's sanitisation job.
import type { ImageSet } from '../data/fashion.js';
import type { ModelProto } from '../onnx/proto.js';
import { train } from '../train/trainer.js';
import { ARCHITECTURES, deployableModel } from '../train/zoo.js';
import { InputError } from '../input-error.js';
import { activationClustering, activations, spectralSignatures, type DetectMethod, type Detection } from './detect.js';

export interface FindOptions {
  method: DetectMethod;
  classes: number;
  /** Spectral signatures flag 1.5 × this share of every class. */
  rate: number;
  seed: number;
  /** A reference model to read activations from; otherwise one of `arch` is trained for `epochs`. */
  model?: ModelProto;
  arch?: string;
  epochs?: number;
  threads?: number;
  /** Progress of the two long phases: the reference model's training steps, then the activation pass. */
  onProgress?: (p: {
    phase: 'reference model' | 'activations';
    done: number;
    total: number;
    accuracy?: number;
  }) => void;
  signal?: AbortSignal;
}

export async function findPoison(data: ImageSet, o: FindOptions): Promise<Detection> {
  let model = o.model;
  if (!model) {
    const arch = ARCHITECTURES[o.arch ?? 'small-cnn'];
    if (!arch) throw new InputError(`unknown reference architecture "${o.arch}"`);
    if (o.classes > arch.classes)
      throw new InputError(`the reference ${arch.name} has ${arch.classes} classes; the data has ${o.classes}`);
    const r = await train({
      arch,
      data,
      epochs: o.epochs ?? 2,
      seed: o.seed,
      threads: o.threads,
      signal: o.signal,
      onProgress: (p) =>
        o.onProgress?.({
          phase: 'reference model',
          done: (p.epoch - 1) * p.steps + p.step,
          total: p.epochs * p.steps,
          accuracy: p.accuracy,
        }),
    });
    model = deployableModel(arch, r.deploy);
  }
  const acts = await activations(model, data, {
    threads: o.threads,
    onProgress: (done, total) => o.onProgress?.({ phase: 'activations', done, total }),
  });
  return o.method === 'spectral'
    ? spectralSignatures(acts, data.labels, o.classes, o.rate, o.seed)
    : activationClustering(acts, data.labels, o.classes, { seed: o.seed });
}
