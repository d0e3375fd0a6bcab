// The train stage's activity: defended training in an engine job process. Each checkpoint the job writes goes
// into the artifact store by SHA-256 and its reference into the heartbeat, so a retry (after a worker crash or a
// server restart) resumes from it; cancelling kills the job and keeps the last checkpoint.
import { Context } from '@temporalio/activity';
import { datasetRead, jobDataset, type SplitInput } from './job-dataset.js';
import { readFile, rm } from 'node:fs/promises';
import type { TrainProgressMessage, TrainResult } from '../engine/jobs/protocol.js';
import { runJob } from '../engine/jobs/run-job.js';
import { engineJob } from './engine-job.js';
import type { Evidence, TrainConfig } from '../policy/index.js';
import { requirePins, type EvidenceContext, type EvidenceSigner } from './evidence.js';
import type { ArtifactStore } from './store.js';

/** The split, its pinned digests and the file cap: {@link SplitInput}. */
export interface TrainInput extends SplitInput {
  config: TrainConfig;
  evidence?: EvidenceContext;
}

/** What the heartbeat carries: the latest stored checkpoint and the progress. */
export interface TrainHeartbeat {
  checkpoint?: { ref: string; epoch: number; step: number };
  progress?: TrainProgressMessage;
}

export interface TrainOutput {
  modelRef: string;
  history: TrainResult['history'];
  bestEpoch?: number;
  resumedFrom?: { epoch: number; step: number };
  /** The last checkpoint stored. */
  checkpointRef?: string;
  /** DP-SGD: (ε, δ) from the accountant, with its order and the mechanism's parameters. */
  privacy?: TrainResult['privacy'];
  evidence?: Evidence<'training'>;
}

export async function trainModel(
  store: ArtifactStore,
  signer: () => Promise<EvidenceSigner>,
  input: TrainInput,
): Promise<TrainOutput> {
  const ctx = Context.current();
  // Evidence-producing runs resume only from a checkpoint this worker pool sealed into its heartbeat.
  requirePins(input, 'training');
  const seal = input.evidence ? await signer() : undefined;
  const raw = ctx.info.heartbeatDetails as unknown;
  const previous = seal ? seal.open<TrainHeartbeat>(raw) : (raw as TrainHeartbeat | undefined);
  const heartbeat = (b: TrainHeartbeat) => ctx.heartbeat(seal ? seal.seal(b) : b);
  const beat: TrainHeartbeat = { checkpoint: previous?.checkpoint };
  let resume: { path: string; sha256: string } | undefined;
  if (previous?.checkpoint) {
    // Read through the store so a corrupted checkpoint is refused rather than trained from.
    await store.get(previous.checkpoint.ref);
    const digest = previous.checkpoint.ref.replace(/^sha256:/, '');
    resume = { path: await store.localPath(digest), sha256: digest };
    ctx.log.info('resuming training from the last heartbeated checkpoint', { ...previous.checkpoint });
  }
  // Checkpoint files are stored one after another, in the order the job wrote them.
  let storing = Promise.resolve();
  const c = input.config;
  const job = { code: 'InvalidTraining', prefix: 'train', heartbeat, onError: () => storing };
  return engineJob(job, async ({ workDir, signal, beat: send }) => {
    send(beat);
    const result = await runJob(
      {
        ...c,
        kind: 'train',
        ...(await jobDataset(input, store)),
        resume,
        workDir,
      },
      {
        signal,
        onTrainProgress: (p) => {
          beat.progress = p;
          send(beat);
        },
        onCheckpoint: (m) => {
          storing = storing.then(async () => {
            const stored = await store.put(await readFile(m.path));
            await rm(m.path, { force: true });
            beat.checkpoint = { ref: stored.ref, epoch: m.epoch, step: m.step };
            send(beat);
          });
        },
      },
    );
    await storing;
    const model = await store.put(await readFile(result.modelPath));
    const out: TrainOutput = {
      modelRef: model.ref,
      history: result.history,
      bestEpoch: result.bestEpoch,
      resumedFrom: result.resumedFrom,
      checkpointRef: beat.checkpoint?.ref,
      ...(result.privacy ? { privacy: result.privacy } : {}),
    };
    if (seal && input.evidence) {
      const last = result.history[result.history.length - 1];
      const robust = result.history.flatMap((h) => (h.robustValidation === undefined ? [] : [h.robustValidation]));
      const metrics: Record<string, number> = {
        'train.epochs': result.history.length,
        'train.loss': last.loss,
        'train.accuracy': last.accuracy,
      };
      if (robust.length) metrics['train.robust_validation'] = Math.max(...robust);
      Object.assign(metrics, privacyMetrics(result.privacy));
      out.evidence = seal.sign('training', input.evidence, {
        modelSha256: model.digest,
        dataset: datasetRead(input),
        metrics,
        config: input.config,
      });
    }
    return out;
  });
}

/** The train stage's privacy metrics: what gates such as train.privacy.epsilon <= 3 read. */
export function privacyMetrics(p: TrainResult['privacy']): Record<string, number> {
  return p ? { 'train.privacy.epsilon': p.epsilon, 'train.privacy.delta': p.delta } : {};
}
