// The data stage's poisoning defense: a sanitise job (reference model, activations, detector) in an engine process,
// its sanitised split and list of removed indices stored by SHA-256, metrics for gates, and signed evidence naming
// both the files read and the copy stored, which the train stage then trains on.
import { Context } from '@temporalio/activity';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobProgress, SanitiseResult } from '../engine/jobs/protocol.js';
import { runJob } from '../engine/jobs/run-job.js';
import type { Evidence, PoisoningConfig } from '../policy/index.js';
import { requirePins, type EvidenceContext, type EvidenceSigner } from './evidence.js';
import { datasetRead, jobDataset, type SplitInput } from './job-dataset.js';
import { jobFailure } from './job-failure.js';
import type { ArtifactStore } from './store.js';

export interface SanitiseInput extends SplitInput {
  config: PoisoningConfig;
  evidence?: EvidenceContext;
}

export interface SanitiseOutput {
  /** The sanitised split and the removed indices, as artifact references. */
  images: string;
  labels: string;
  removed: string;
  metrics: Record<string, number>;
  classes: SanitiseResult['classes'];
  referenceAccuracy?: number;
  evidence?: Evidence<'sanitisation'>;
}

export async function sanitiseDataset(
  store: ArtifactStore,
  signer: () => Promise<EvidenceSigner>,
  input: SanitiseInput,
): Promise<SanitiseOutput> {
  const ctx = Context.current();
  requirePins(input, 'sanitisation');
  const seal = input.evidence ? await signer() : undefined;
  const workDir = await mkdtemp(join(tmpdir(), 'secmlops-sanitise-'));
  let last: JobProgress | undefined;
  // Progress arrives every few training steps; the ticker covers the quiet moments (the detector, gzip).
  const ticker = setInterval(() => ctx.heartbeat(last), 5000);
  const { split: _split, ...config } = input.config;
  try {
    const r = await runJob(
      { kind: 'sanitise', ...jobDataset(input), config, workDir },
      {
        signal: ctx.cancellationSignal,
        onProgress: (p) => {
          last = p;
          ctx.heartbeat(p);
        },
      },
    );
    const put = async (path: string) => (await store.put(await readFile(path))).digest;
    const [images, labels, removed] = [await put(r.imagesPath), await put(r.labelsPath), await put(r.removedPath)];
    const metrics: Record<string, number> = {
      'data.poison.flagged': r.removed,
      'data.poison.flagged_fraction': r.images ? r.removed / r.images : 0,
    };
    for (const c of r.classes) metrics[`data.poison.class.${c.class}.flagged`] = c.flagged;
    const out: SanitiseOutput = {
      images: `sha256:${images}`,
      labels: `sha256:${labels}`,
      removed: `sha256:${removed}`,
      metrics,
      classes: r.classes,
      ...(r.referenceAccuracy === undefined ? {} : { referenceAccuracy: r.referenceAccuracy }),
    };
    if (seal && input.evidence)
      out.evidence = seal.sign('sanitisation', input.evidence, {
        split: input.config.split,
        dataset: datasetRead(input),
        output: { images, labels, removed },
        images: r.images,
        removed: r.removed,
        metrics,
        config: input.config,
      });
    return out;
  } catch (e) {
    throw jobFailure(e, 'InvalidDataset');
  } finally {
    clearInterval(ticker);
    await rm(workDir, { recursive: true, force: true });
  }
}
