// The train stage's activity: defended training in an engine job process. Each checkpoint the job writes goes
// into the artifact store by SHA-256 and its reference into the heartbeat, so a retry (after a worker crash or a
// server restart) resumes from it; cancelling kills the job and keeps the last checkpoint.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainProgressMessage, TrainResult } from '../engine/jobs/protocol.js';
import { JobError, runJob } from '../engine/jobs/run-job.js';
import type { DatasetSplit, TrainConfig } from '../policy/index.js';
import type { ArtifactStore } from './store.js';

export interface TrainInput {
  root: string;
  split: DatasetSplit;
  classes: number;
  config: TrainConfig;
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
}

export async function trainModel(store: ArtifactStore, input: TrainInput): Promise<TrainOutput> {
  const ctx = Context.current();
  const previous = ctx.info.heartbeatDetails as TrainHeartbeat | undefined;
  const beat: TrainHeartbeat = { checkpoint: previous?.checkpoint };
  let resume: { path: string; sha256: string } | undefined;
  if (previous?.checkpoint) {
    // Read through the store so a corrupted checkpoint is refused rather than trained from.
    await store.get(previous.checkpoint.ref);
    const digest = previous.checkpoint.ref.replace(/^sha256:/, '');
    resume = { path: store.pathOf(digest), sha256: digest };
    ctx.log.info('resuming training from the last heartbeated checkpoint', { ...previous.checkpoint });
  }
  const workDir = await mkdtemp(join(tmpdir(), 'secmlops-train-'));
  // Progress arrives every 20 steps, which a slow configuration may stretch past the heartbeat timeout.
  const ticker = setInterval(() => ctx.heartbeat(beat), 10_000);
  // Checkpoint files are stored one after another, in the order the job wrote them.
  let storing = Promise.resolve();
  const c = input.config;
  try {
    const result = await runJob(
      { ...c, kind: 'train', images: join(input.root, input.split.images), labels: join(input.root, input.split.labels), classes: input.classes, resume, workDir },
      {
        signal: ctx.cancellationSignal,
        onTrainProgress: (p) => {
          beat.progress = p;
          ctx.heartbeat(beat);
        },
        onCheckpoint: (m) => {
          storing = storing.then(async () => {
            const stored = await store.put(await readFile(m.path));
            await rm(m.path, { force: true });
            beat.checkpoint = { ref: stored.ref, epoch: m.epoch, step: m.step };
            ctx.heartbeat(beat);
          });
        },
      },
    );
    await storing;
    const model = await store.put(await readFile(result.modelPath));
    return { modelRef: model.ref, history: result.history, bestEpoch: result.bestEpoch, resumedFrom: result.resumedFrom, checkpointRef: beat.checkpoint?.ref };
  } catch (e) {
    await storing.catch(() => undefined);
    // The SDK's own reason tells a requested cancel (reported as cancelled) from a worker shutdown (retried).
    if (ctx.cancellationSignal.aborted) {
      ctx.log.info('engine job killed', { reason: String(ctx.cancellationSignal.reason) });
      throw ctx.cancellationSignal.reason;
    }
    const msg = (e as Error).message;
    if (e instanceof JobError && e.permanent) throw ApplicationFailure.nonRetryable(msg, 'InvalidTraining');
    throw ApplicationFailure.retryable(msg, 'EngineJobFailed');
  } finally {
    clearInterval(ticker);
    await rm(workDir, { recursive: true, force: true });
  }
}
