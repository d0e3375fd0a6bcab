// The data stage's poisoning defense: a sanitise job (reference model, activations, detector) in an engine process,
// its sanitised split and list of removed indices stored by SHA-256, metrics for gates, and signed evidence naming
// both the files read and the copy stored, which the train stage then trains on.
import { readFile } from 'node:fs/promises';
import type { JobProgress, SanitiseResult } from '../engine/jobs/protocol.js';
import { runJob } from '../engine/jobs/run-job.js';
import type { Evidence, PoisoningConfig } from '../policy/index.js';
import { requirePins, type EvidenceContext, type EvidenceSigner } from './evidence.js';
import { datasetRead, jobDataset, type SplitInput } from './job-dataset.js';
import { engineJob } from './engine-job.js';
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
  requirePins(input, 'sanitisation');
  const seal = input.evidence ? await signer() : undefined;
  const { split: _split, ...config } = input.config;
  // Progress arrives every few training steps; the heartbeat repeats it in the quiet moments (the detector, gzip).
  const job = { code: 'InvalidDataset', prefix: 'sanitise', everyMs: 5000 };
  return engineJob<SanitiseOutput, JobProgress>(job, async ({ workDir, signal, beat }) => {
    const r = await runJob(
      { kind: 'sanitise', ...(await jobDataset(input)), config, workDir },
      { signal, onProgress: beat },
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
  });
}
