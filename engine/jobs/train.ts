// The train job: defended training with checkpoints written as files the supervisor stores and heartbeats.
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { holdOutValidation, loadPair, type ImageSet } from '../data/fashion.js';
import { partition, subset } from '../federated/partition.js';
import { flatten, parameterCount, readVector, unflatten, vectorBytes } from '../federated/vector.js';
import { MODEL_LIMITS, parseModel, saveModel } from '../onnx/model.js';
import { RegularFileError, readRegular } from '../io/regular-file.js';
import type { DistillConfig } from '../train/distill.js';
import { decodeCheckpoint, encodeCheckpoint } from '../train/checkpoint.js';
import { trainDpSgd, type DpTrainResult } from '../train/dp-sgd.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { ARCHITECTURES, deployableModel, type Architecture } from '../train/zoo.js';
import { InputError } from '../input-error.js';
import type { FederatedClientRound, TrainProgressMessage, TrainRequest, TrainResult } from './protocol.js';

export interface TrainCallbacks {
  progress: (p: TrainProgressMessage) => void;
  checkpoint: (path: string, epoch: number, step: number) => void;
}

export async function trainJob(req: TrainRequest, cb: TrainCallbacks): Promise<TrainResult> {
  const arch = ARCHITECTURES[req.arch];
  if (!arch) throw new InputError(`unknown architecture "${req.arch}"`);
  const all = await loadPair(req, req.classes, req.limit);
  const split = holdOutValidation(all, req.earlyStop);
  const { validation } = split;
  const client = req.client ? await clientRound(req.client, arch, split.data) : undefined;
  const data = client?.data ?? split.data;
  let resume;
  if (req.resume) {
    const bytes = await readFile(req.resume.path);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== req.resume.sha256)
      throw new InputError(`checkpoint ${req.resume.path} has SHA-256 ${digest}, expected ${req.resume.sha256}`);
    try {
      resume = decodeCheckpoint(bytes, req.resume.path);
    } catch (e) {
      throw new InputError((e as Error).message);
    }
  }
  let n = 0;
  const common: Omit<TrainOptions, 'defense'> = {
    arch,
    data,
    epochs: req.epochs,
    lr: req.lr,
    optimizer: req.optimizer,
    schedule: req.schedule,
    weightDecay: req.weightDecay,
    seed: req.seed,
    threads: req.threads,
    resume,
    ...(client ? { init: client.init } : {}),
    checkpointEvery: req.checkpointEvery,
    onCheckpoint: async (c) => {
      const path = join(req.workDir, `checkpoint-${n++}.ckpt`);
      await writeFile(`${path}.tmp`, encodeCheckpoint(c));
      await rename(`${path}.tmp`, path);
      cb.checkpoint(path, c.epoch, c.step);
    },
    onProgress: (p) =>
      cb.progress({
        epoch: p.epoch,
        epochs: p.epochs,
        step: p.step,
        steps: p.steps,
        loss: p.loss,
        accuracy: p.accuracy,
        imagesPerSecond: p.imagesPerSecond,
      }),
  };
  const d = req.defense;
  const result =
    d.kind === 'dp-sgd'
      ? await trainDpSgd({
          ...common,
          dp: { noiseMultiplier: d.noiseMultiplier, clip: d.clip, sampleRate: d.sampleRate, delta: d.delta },
        })
      : await train({
          ...common,
          batch: req.batch,
          defense: d,
          ...(req.augment?.cutmix ? { cutmix: req.augment.cutmix } : {}),
          ...(req.distill ? { distill: await distillFrom(req.distill) } : {}),
          range: { min: req.range[0], max: req.range[1] },
          earlyStop:
            req.earlyStop && d.kind !== 'none'
              ? {
                  validation,
                  eps: d.eps,
                  steps: 10,
                  ...(req.earlyStopMinClean === undefined ? {} : { minClean: req.earlyStopMinClean }),
                }
              : undefined,
        });
  const modelPath = join(req.workDir, 'model.onnx');
  await writeFile(modelPath, saveModel(deployableModel(arch, result.deploy)));
  let weightsPath: string | undefined;
  if (client) {
    weightsPath = join(req.workDir, 'weights.f32');
    await writeFile(weightsPath, vectorBytes(flatten(arch, result.weights)));
  }
  return {
    modelPath,
    ...(weightsPath ? { weightsPath, images: data.count } : {}),
    history: result.history,
    bestEpoch: result.bestEpoch,
    ...('privacy' in result ? { privacy: (result as DpTrainResult).privacy } : {}),
    resumedFrom: resume && { epoch: resume.epoch, step: resume.step },
  };
}

/** A federated client's round: its part of the split, and the global weights read against their digest. */
async function clientRound(
  c: FederatedClientRound,
  arch: Architecture,
  all: ImageSet,
): Promise<{ data: ImageSet; init: Map<string, Float32Array> }> {
  const bytes = await readRegular(c.init.path, parameterCount(arch) * 4 + 1).catch((e: unknown) => {
    throw e instanceof RegularFileError ? new InputError(`the global model: ${e.message}`) : e;
  });
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== c.init.sha256) throw new InputError(`the global model has SHA-256 ${digest}, not ${c.init.sha256}`);
  const init = unflatten(arch, readVector(bytes, parameterCount(arch), 'the global model'));
  const parts = partition(all.labels, c.shard.clients, c.shard.partition, c.shard.seed);
  const mine = parts[c.shard.index];
  if (!mine) throw new InputError(`client index ${c.shard.index} is not one of ${c.shard.clients}`);
  return { data: subset(all, mine), init };
}

/** The policy's teacher, read as a regular file and refused unless its bytes have the pinned digest. */
async function distillFrom(d: NonNullable<TrainRequest['distill']>): Promise<DistillConfig> {
  if (!d.teacher) return { temperature: d.temperature, alpha: d.alpha };
  const bytes = await readRegular(d.teacher.path, MODEL_LIMITS.maxBytes).catch((e: unknown) => {
    throw e instanceof RegularFileError ? new InputError(`train.distill.teacher: ${e.message}`) : e;
  });
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== d.teacher.sha256)
    throw new InputError(
      `train.distill.teacher ${d.teacher.path} has SHA-256 ${digest}, but the policy pins ${d.teacher.sha256}`,
    );
  return {
    temperature: d.temperature,
    alpha: d.alpha,
    teacher: parseModel(bytes, d.teacher.path),
    teacherSha256: digest,
  };
}
