// The side-by-side experiment's work on the gpu queue: the model one defense trains (on clean or BadNets-poisoned
// data), and one attack's evaluation of it. Models are cached by a digest of everything that shaped them, so the
// cells that share a model train it once, and a cell retried after a crash finds it.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FASHION_FILES } from '../engine/data/fashion.js';
import { checkPair, readIdx } from '../engine/data/idx.js';
import { encodeIdx } from '../engine/data/idx-write.js';
import { gzipSync } from 'node:zlib';
import type { ExperimentEvalResult, JobDataset, TrainRequest } from '../engine/jobs/protocol.js';
import { runJob } from '../engine/jobs/run-job.js';
import { poison } from '../engine/poison/attacks.js';
import type { AttackName, DefenseName, ExperimentSpec } from '../experiment/spec.js';
import { canonicalJson } from '../policy/index.js';
import { engineJob } from './engine-job.js';
import type { ArtifactStore } from './store.js';

export interface ModelRequest {
  spec: ExperimentSpec;
  defense: DefenseName;
  poisoned: boolean;
}

export interface ExperimentModel {
  ref: string;
  sha256: string;
  /** Wall time of the training (0 when cached). */
  seconds: number;
  cached: boolean;
  /** The full policy's sanitisation: images removed, and how many of them were poisoned. */
  sanitised?: { removed: number; poisonedRemoved: number; poisoned: number };
}

const TRIGGER = { patch: 0, position: 'bottom-right' as const, value: 255 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The training split as the job reads it: the originals, or the poisoned copy in the store. */
async function trainingFiles(store: ArtifactStore, req: ModelRequest) {
  const { spec } = req;
  const files = {
    images: join(spec.data, FASHION_FILES.train.images),
    labels: join(spec.data, FASHION_FILES.train.labels),
  };
  const originals = {
    ...files,
    imagesSha256: sha(await readFile(files.images)),
    labelsSha256: sha(await readFile(files.labels)),
  };
  if (!req.poisoned) return { files: originals, indices: [] as number[] };
  const images = await readIdx(files.images, originals.imagesSha256);
  const labels = await readIdx(files.labels, originals.labelsSha256);
  const set = checkPair(images, labels, files, 10);
  const p = spec.poisoning;
  const out = poison(
    set,
    { kind: 'badnets', rate: p.rate, seed: spec.train.seed, target: p.target, ...TRIGGER, patch: p.patch },
    10,
  );
  const i = await store.put(gzipSync(encodeIdx(images.dims, out.images)));
  const l = await store.put(gzipSync(encodeIdx(labels.dims, out.labels)));
  return {
    files: { images: i.path, labels: l.path, imagesSha256: i.digest, labelsSha256: l.digest },
    indices: out.indices,
  };
}

export async function experimentModel(
  store: ArtifactStore,
  cacheDir: string,
  req: ModelRequest,
): Promise<ExperimentModel> {
  const { spec } = req;
  // On clean data the full policy has nothing to sanitise: it trains what ES+AT trains, and shares its model.
  const defense = req.defense === 'full' && !req.poisoned ? 'es-at' : req.defense;
  const key = sha(
    Buffer.from(
      canonicalJson({
        v: 1,
        train: spec.train,
        defense,
        data: spec.data,
        ...(req.poisoned ? { poisoning: spec.poisoning } : {}),
        ...(defense === 'cutmix' ? { cutmix: spec.cutmix } : {}),
        ...(defense === 'distillation' ? { distillation: spec.distillation } : {}),
        ...(defense === 'es-at' || defense === 'full' ? { at: spec.adversarialTraining } : {}),
      }),
    ),
  );
  const cached = join(cacheDir, `${key}.json`);
  const hit = await readFile(cached, 'utf8').catch(() => undefined);
  if (hit) {
    const m = JSON.parse(hit) as ExperimentModel;
    // Only a model still in the store, with its bytes intact, is reused.
    if (
      await store.get(m.ref).then(
        () => true,
        () => false,
      )
    )
      return { ...m, cached: true, seconds: 0 };
  }
  const started = performance.now();
  return engineJob({ code: 'InvalidTraining', prefix: 'experiment' }, async ({ workDir, signal, beat }) => {
    const data = await trainingFiles(store, req);
    let files: JobDataset = { ...data.files, classes: 10 };
    let sanitised: ExperimentModel['sanitised'];
    if (defense === 'full' && req.poisoned) {
      const s = await runJob({
        kind: 'sanitise',
        ...files,
        config: {
          method: 'spectral',
          arch: spec.train.arch,
          epochs: 1,
          rate: spec.poisoning.rate,
          maxRemoval: 0.2,
          seed: spec.train.seed,
        },
        workDir,
      });
      const { removed } = JSON.parse(await readFile(s.removedPath, 'utf8')) as { removed: number[] };
      const truth = new Set(data.indices);
      sanitised = {
        removed: removed.length,
        poisonedRemoved: removed.filter((i) => truth.has(i)).length,
        poisoned: truth.size,
      };
      const i = await store.put(await readFile(s.imagesPath));
      const l = await store.put(await readFile(s.labelsPath));
      files = { images: i.path, labels: l.path, imagesSha256: i.digest, labelsSha256: l.digest, classes: 10 };
    }
    const train = async (extra: Partial<TrainRequest>) => {
      const result = await runJob(
        {
          kind: 'train',
          ...files,
          arch: spec.train.arch,
          defense: { kind: 'none' },
          epochs: spec.train.epochs,
          batch: spec.train.batch,
          lr: spec.train.lr,
          optimizer: 'adam',
          schedule: 'one-cycle',
          weightDecay: 0,
          earlyStop: false,
          seed: spec.train.seed,
          range: [0, 1],
          checkpointEvery: 1_000_000,
          ...(spec.train.limit ? { limit: spec.train.limit } : {}),
          workDir,
          ...extra,
        },
        { signal: signal, onTrainProgress: beat },
      );
      return store.put(await readFile(result.modelPath));
    };
    const at = spec.adversarialTraining;
    const T = spec.distillation.temperature;
    let model;
    if (defense === 'none') model = await train({});
    else if (defense === 'cutmix') model = await train({ augment: { cutmix: spec.cutmix } });
    else if (defense === 'es-at' || defense === 'full')
      model = await train({
        defense: {
          kind: at.kind,
          eps: at.eps,
          ...(at.steps ? { steps: at.steps } : {}),
          ...(at.stepSize ? { stepSize: at.stepSize } : {}),
        },
        earlyStop: true,
        ...(at.minClean === undefined ? {} : { earlyStopMinClean: at.minClean }),
        ...(at.epochs === undefined ? {} : { epochs: at.epochs }),
      });
    else {
      // Defensive distillation (Papernot et al. 2016): a teacher trained at temperature T, a student trained on its
      // soft labels at T, deployed at T = 1 (the exported logits).
      const teacher = await train({ distill: { temperature: T, alpha: 1 } });
      model = await train({
        distill: { temperature: T, alpha: 1, teacher: { path: teacher.path, sha256: teacher.digest } },
      });
    }
    const out: ExperimentModel = {
      ref: model.ref,
      sha256: model.digest,
      seconds: (performance.now() - started) / 1000,
      cached: false,
      ...(sanitised ? { sanitised } : {}),
    };
    await mkdir(cacheDir, { recursive: true });
    await writeFile(cached, JSON.stringify(out));
    return out;
  });
}

export interface EvaluateCellRequest {
  spec: ExperimentSpec;
  attack: AttackName;
  model: { ref: string; sha256: string };
  guard: boolean;
}

export async function experimentEvaluate(
  store: ArtifactStore,
  req: EvaluateCellRequest,
): Promise<ExperimentEvalResult> {
  const { spec } = req;
  await store.get(req.model.ref);
  const test = {
    images: join(spec.data, FASHION_FILES.test.images),
    labels: join(spec.data, FASHION_FILES.test.labels),
  };
  const train = {
    images: join(spec.data, FASHION_FILES.train.images),
    labels: join(spec.data, FASHION_FILES.train.labels),
  };
  const attack = req.attack === 'poisoning' ? 'trigger' : req.attack.endsWith('deepfool') ? 'deepfool' : 'fgsm';
  return engineJob({ code: 'InvalidEvaluation', prefix: 'experiment-eval' }, async ({ signal, beat }) =>
    runJob(
      {
        kind: 'experiment',
        modelPath: await store.localPath(req.model.sha256),
        modelSha256: req.model.sha256,
        ...test,
        classes: 10,
        ...(spec.test.limit ? { limit: spec.test.limit } : {}),
        range: [0, 1],
        seed: spec.train.seed,
        attack,
        eps: spec.eps,
        ...(attack === 'trigger'
          ? { trigger: { ...TRIGGER, patch: spec.poisoning.patch, target: spec.poisoning.target } }
          : {}),
        safetyCritical: spec.safetyCritical,
        // The full policy's decision margin for the safety-critical class, calibrated on test images after the
        // evaluated ones (the spec refuses an overlap).
        ...(req.guard && spec.safetyMargin
          ? {
              margin: {
                maxAccuracyDrop: spec.safetyMargin.maxAccuracyDrop,
                calibration: { ...test, classes: 10, from: spec.safetyMargin.from, count: spec.safetyMargin.count },
              },
            }
          : {}),
        // Calibrated on clean training images (the test images are what is attacked).
        ...(req.guard
          ? {
              guard: {
                config: { bits: spec.guard.bits, median: spec.guard.median },
                fpr: spec.guard.fpr,
                calibration: { ...train, classes: 10, count: 1000 },
              },
            }
          : {}),
      },
      { signal, onProgress: beat },
    ),
  );
}
