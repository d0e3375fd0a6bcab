// The evaluate stage's activity: pins the model in the artifact store, runs the attack suite in an engine job
// process (heartbeating its progress; cancelling kills it) and turns the results into gate metrics.
import { datasetRead, jobDataset, type SplitInput } from './job-dataset.js';
import { ApplicationFailure } from '@temporalio/common';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { MODEL_LIMITS } from '../engine/onnx/model.js';
import type { EvaluateResult, JobProgress } from '../engine/jobs/protocol.js';
import { runJob } from '../engine/jobs/run-job.js';
import { engineJob } from './engine-job.js';
import { executionProviderFromEnv } from '../engine/runtime/session.js';
import type { DatasetSplit, EvaluateConfig, Evidence } from '../policy/index.js';
import type { EvaluationSummary } from '../workflows/messages.js';
import { requirePins, type EvidenceContext, type EvidenceSigner } from './evidence.js';
import type { ArtifactStore } from './store.js';

/** The split, its pinned digests and the file cap: {@link SplitInput}. */
export interface EvaluateInput extends SplitInput {
  /** The model file, or (from a train stage) modelRef in the artifact store. */
  modelPath?: string;
  modelSha256?: string;
  modelRef?: string;
  config: EvaluateConfig;
  /** evaluate.privacy: the members split's files and their pinned digests. */
  members?: { split: DatasetSplit; pinned?: { images?: string; labels?: string } };
  evidence?: EvidenceContext;
  /** The release is monitored: summarise the clean images as the monitor's drift reference (signed with the rest). */
  reference?: boolean;
}

export interface EvaluateOutput {
  modelRef: string;
  metrics: Record<string, number>;
  summary: EvaluationSummary;
  evidence?: Evidence<'evaluation'>;
}

export async function evaluateModel(
  store: ArtifactStore,
  signer: () => Promise<EvidenceSigner>,
  input: EvaluateInput,
): Promise<EvaluateOutput> {
  const seal = await prepare(input, signer);
  const stored = await modelOf(store, input);
  const result = await runEvaluation(input, stored);
  return evaluationOutput(input, stored, result, seal);
}

/** The pins evidence needs, and the signer when evidence is asked for. */
export async function prepare(input: EvaluateInput, signer: () => Promise<EvidenceSigner>) {
  requirePins(input, 'evaluation');
  if (input.members) requirePins({ evidence: input.evidence, pinned: input.members.pinned }, 'membership inference');
  return input.evidence ? await signer() : undefined;
}

export type StoredModel = { ref: string; digest: string; path: string };

/** The model, from an earlier stage's reference or the policy's file (copied into the store, checked). */
export function modelOf(store: ArtifactStore, input: EvaluateInput): Promise<StoredModel> {
  return input.modelRef
    ? fromStore(store, input.modelRef)
    : intoStore(store, input.modelPath!, input.modelSha256, input.config.modelLimits?.maxBytes);
}

/** The engine job over the whole split, or over one part of it when `shard` is given. */
export async function runEvaluation(
  input: EvaluateInput,
  stored: StoredModel,
  shard?: { index: number; count: number },
): Promise<EvaluateResult> {
  // A model the engine refuses (hostile or malformed) will not get better on retry; a crash might. Failures name
  // the user's file, not its copy in the artifact store.
  const job = {
    code: 'InvalidModel',
    prefix: shard ? `evaluate part ${shard.index + 1} of ${shard.count}` : 'evaluate',
    everyMs: 5000,
    message: (m: string) => m.split(stored.path).join(input.modelPath ?? input.modelRef!),
  };
  return engineJob<EvaluateResult, JobProgress>(job, async ({ signal, beat }) =>
    runJob(
      {
        kind: 'evaluate',
        modelPath: stored.path,
        modelSha256: stored.digest,
        ...(await jobDataset(input)),
        limit: input.config.limit,
        range: input.config.range,
        seed: input.config.seed,
        attacks: input.config.attacks,
        curve: input.config.curve,
        ...(input.config.backdoor ? { backdoor: input.config.backdoor } : {}),
        ...((await membersRequest(input)) ?? {}),
        ...(input.config.modelLimits ? { modelLimits: input.config.modelLimits } : {}),
        ...(input.reference ? { reference: true } : {}),
        ...(shard ? { shard } : {}),
        executionProvider: executionProviderFromEnv(),
      },
      { signal, onProgress: beat },
    ),
  );
}

/** What the files of this evaluation are, as evidence names them (checked against the pins while read). */
export function evaluationDataset(input: EvaluateInput) {
  return [...datasetRead(input), ...(input.members ? datasetRead({ ...input, ...input.members }) : [])];
}

/** Metrics, the summary and, with evidence asked for, the signed evaluation. */
export function evaluationOutput(
  input: EvaluateInput,
  stored: StoredModel,
  result: EvaluateResult,
  seal: EvidenceSigner | undefined,
): EvaluateOutput {
  const metrics = toMetrics(result, input.config.safetyCritical);
  const out: EvaluateOutput = { modelRef: stored.ref, metrics, summary: summarize(result) };
  if (seal && input.evidence) {
    out.evidence = seal.sign('evaluation', input.evidence, {
      modelSha256: stored.digest,
      dataset: evaluationDataset(input),
      metrics,
      config: input.config,
      ...(result.reference ? { reference: result.reference } : {}),
    });
  }
  return out;
}

/** A model an earlier stage stored: read back through the store, which checks its digest. */
async function fromStore(store: ArtifactStore, ref: string): Promise<StoredModel> {
  await store.get(ref).catch((e: Error) => {
    throw ApplicationFailure.nonRetryable(`model ${ref}: ${e.message}`, 'ModelMissing');
  });
  const digest = ref.replace(/^sha256:/, '');
  return { ref, digest, path: await store.localPath(digest) };
}

/** A model file from the policy: read only as a regular file within the size limit, then copied into the store. */
async function intoStore(
  store: ArtifactStore,
  path: string,
  pinned?: string,
  maxBytes = MODEL_LIMITS.maxBytes,
): Promise<StoredModel> {
  const bytes = await readRegular(path, maxBytes).catch((e: unknown) => {
    if (!(e instanceof RegularFileError)) throw e;
    throw ApplicationFailure.nonRetryable(`model ${e.message}`, 'ModelUnreadable');
  });
  const stored = await store.put(bytes);
  if (pinned && stored.digest !== pinned)
    throw ApplicationFailure.nonRetryable(
      `model ${path} has SHA-256 ${stored.digest}, but the policy pins ${pinned}`,
      'ModelDigestMismatch',
    );
  return stored;
}

function toMetrics(r: EvaluateResult, safetyCritical: number[]): Record<string, number> {
  const m: Record<string, number> = { 'evaluate.clean_accuracy': r.cleanAccuracy, 'evaluate.images': r.images };
  const first = r.attacks[0]?.metrics;
  for (const k of safetyCritical) if (first) m[`evaluate.class.${k}.miss_rate`] = first.classes[k].missRate;
  if (r.membership) {
    const best = (k: 'auc' | 'advantage') => Math.max(r.membership!.loss[k], r.membership!.calibrated[k]);
    m['evaluate.privacy.mia_auc'] = best('auc');
    m['evaluate.privacy.mia_advantage'] = best('advantage');
  }
  // NaN (no test image outside the target class) is left out, so a gate on it fails as not measured.
  if (r.backdoor && Number.isFinite(r.backdoor.success_rate)) {
    m['evaluate.backdoor.success_rate'] = r.backdoor.success_rate;
    m['evaluate.backdoor.baseline_rate'] = r.backdoor.baseline_rate;
  }
  for (const a of r.attacks) {
    const put = (name: string, v: number) => {
      if (Number.isFinite(v)) m[`evaluate.${a.id}.${name}`] = v;
    };
    put('robust_accuracy', a.metrics.robust_accuracy);
    put('attack_success_rate', a.metrics.attack_success_rate);
    put('median_linf', a.metrics.median_linf);
    put('median_l2', a.metrics.median_l2);
    for (const k of safetyCritical) put(`class.${k}.miss_rate`, a.metrics.classes[k].robustMissRate);
  }
  return m;
}

function summarize(r: EvaluateResult): EvaluationSummary {
  return {
    images: r.images,
    cleanAccuracy: r.cleanAccuracy,
    withoutGradient: r.withoutGradient,
    attacks: r.attacks.map((a) => ({
      id: a.id,
      attack: a.spec.attack,
      eps: a.spec.eps,
      robustAccuracy: a.metrics.robust_accuracy,
      successRate: a.metrics.attack_success_rate,
      medianLinf: a.metrics.median_linf,
      seconds: a.seconds,
    })),
    curve: r.curve,
    ...(r.backdoor ? { backdoor: r.backdoor } : {}),
    ...(r.membership ? { membership: r.membership } : {}),
  };
}

/** The members split for membership inference, as a job request part: the same root, cap and pins as the rest. */
async function membersRequest(input: EvaluateInput) {
  const privacy = input.config.privacy;
  if (!privacy || !input.members) return undefined;
  const { split, pinned } = input.members;
  return {
    members: { ...(await jobDataset({ ...input, split, pinned, sanitised: undefined })), count: privacy.count },
  };
}
