// One child workflow per lifecycle stage. Each is a swimlane: its tasks, then the approval its policy names.
// Past the trust boundary every activity that measures something returns it signed (evidence), which the lane keeps
// for the release signer; the lane's own metrics and gates are for display and for failing early.
import { ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { Dataset, DatasetSplit, Evidence } from '../policy/index.js';
import { pinnedPair } from '../policy/evidence.js';
import { dataMetrics, evaluateGate, formatMetric } from '../policy/gates.js';
import { own } from '../policy/own.js';
import { describeCell, threatMatrix } from '../policy/threat-model.js';
import type { CpuActivities, GpuActivities } from '../activities/index.js';
import type { ReleaseRequest } from '../activities/release.js';
import { GPU_TASK_QUEUE, type AuditEntry, type ManifestEntry, type StageResult, type StageStatus } from './messages.js';
import { Swimlane, causeMessage, type StageInput } from './swimlane.js';

const cpu = proxyActivities<CpuActivities>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '10s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});
const gpu = proxyActivities<GpuActivities>({
  taskQueue: GPU_TASK_QUEUE,
  startToCloseTimeout: '12h',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5 },
});

/** plan: every asset × STRIDE cell needs a control or a recorded risk acceptance before anyone may approve. */
export async function planStage(input: StageInput): Promise<StageResult> {
  const lane = new Swimlane(input, ['threat-model']);
  const unmeetable = lane.unmeetable();
  if (unmeetable) return unmeetable;
  await lane.task('threat-model', 'checking the threat model', async () => {
    const cells = threatMatrix(input.policy.threatModel);
    lane.status.threatModel = cells;
    if (cells.length === 0) lane.status.blockers.push('the policy names no assets in threatModel.assets');
    for (const c of cells) {
      if (c.status === 'uncovered')
        lane.status.blockers.push(`${describeCell(c)} has neither a control nor a risk acceptance`);
      if (c.acceptedBy)
        lane.status.findings.push(`${describeCell(c)}: risk accepted by ${c.acceptedBy.role} (${c.acceptedBy.reason})`);
    }
    lane.status.metrics['plan.cells'] = cells.length;
    lane.status.metrics['plan.uncovered'] = cells.filter((c) => c.status === 'uncovered').length;
  });
  return lane.approval();
}

/**
 * data: a pinned SHA-256 manifest, IDX validation and class balance, poisoning detection and sanitisation when the
 * policy asks for it, the data gates, then approval.
 */
export async function dataStage(input: StageInput): Promise<StageResult> {
  const poisoning = input.policy.data?.poisoning;
  const lane = new Swimlane(input, ['manifest', 'validate', ...(poisoning ? ['sanitise'] : []), 'gates']);
  const dataset = input.policy.artifacts.dataset;
  if (!dataset) return lane.fail('the policy has no artifacts.dataset to check');
  const unmeetable = lane.unmeetable();
  if (unmeetable) return unmeetable;
  const evidence = lane.evidenceFor();
  try {
    const {
      manifest,
      resumedFrom,
      attempt,
      evidence: signed,
    } = await lane.task('manifest', `hashing ${dataset.files.length} dataset files`, async () => {
      const r = await cpu.hashDatasetFiles({
        root: dataset.root,
        files: dataset.files.map((f) => f.path),
        ...(evidence ? { evidence } : {}),
      });
      const mismatches = dataset.files.flatMap((f) => {
        const got = r.manifest.find((m) => m.path === f.path);
        return got?.sha256 === f.sha256
          ? []
          : [`dataset file ${f.path} has SHA-256 ${got?.sha256 ?? '(missing)'}, but the policy pins ${f.sha256}`];
      });
      if (mismatches.length > 0) throw ApplicationFailure.nonRetryable(mismatches.join('; '), 'DatasetDigestMismatch');
      return r;
    });
    lane.status.manifest = manifest;
    keep(lane, signed);
    lane.status.metrics['data.manifest.attempt'] = attempt;
    lane.status.metrics['data.manifest.resumed_from'] = resumedFrom;
    if (resumedFrom > 0)
      lane.status.findings.push(
        `the manifest resumed after ${resumedFrom} files hashed by an earlier attempt (attempt ${attempt})`,
      );
    const validated = await lane.task('validate', 'validating IDX files', () =>
      gpu.validateDataset({
        root: dataset.root,
        splits: dataset.splits,
        classes: dataset.classes,
        // Only when set, so runs recorded before the setting schedule the same input.
        ...(dataset.maxFileBytes ? { maxFileBytes: dataset.maxFileBytes } : {}),
        ...(evidence ? { evidence, pinned: dataset.files } : {}),
      }),
    );
    // Histories recorded before the validation returned its metrics hold the bare list of splits.
    const splits = Array.isArray(validated) ? validated : validated.splits;
    lane.status.splits = splits;
    Object.assign(lane.status.metrics, Array.isArray(validated) ? dataMetrics(splits) : validated.metrics);
    if (!Array.isArray(validated)) keep(lane, validated.evidence);
    if (poisoning) await sanitise(lane, input, evidence);
  } catch (err) {
    return lane.fail(failureMessage(err));
  }
  const failed = await checkGates(lane, input, 'data');
  if (failed) return lane.fail(failed);
  return lane.approval();
}

/**
 * One split as the gpu activities read it (sanitise, train, evaluate): the dataset's root and file cap, and with
 * evidence the split's pinned digests, which the engine checks while reading.
 */
function splitInput(dataset: Dataset, split: DatasetSplit, evidence: ReturnType<Swimlane['evidenceFor']>) {
  return {
    root: dataset.root,
    split,
    classes: dataset.classes,
    ...(dataset.maxFileBytes ? { maxFileBytes: dataset.maxFileBytes } : {}),
    ...(evidence ? { evidence, pinned: pinnedPair(dataset.files, split) } : {}),
  };
}

/** Finds poison in the training split, stores the split without it, and records what was removed. */
async function sanitise(lane: Swimlane, input: StageInput, evidence: ReturnType<Swimlane['evidenceFor']>) {
  const dataset = input.policy.artifacts.dataset!;
  const poisoning = input.policy.data!.poisoning!;
  const split = own(dataset.splits, poisoning.split)!;
  const what = `finding poison in split ${poisoning.split} (${poisoning.method} on a ${poisoning.arch}) and removing it`;
  const out = await lane.task('sanitise', what, () =>
    gpu.sanitiseDataset({
      ...splitInput(dataset, split, evidence),
      config: poisoning,
    }),
  );
  Object.assign(lane.status.metrics, out.metrics);
  keep(lane, out.evidence);
  lane.status.artifacts['sanitised.images'] = out.images;
  lane.status.artifacts['sanitised.labels'] = out.labels;
  lane.status.artifacts['sanitised.removed'] = out.removed;
  const hit = out.classes.filter((c) => c.flagged > 0).sort((a, b) => b.flagged - a.flagged);
  const total = out.classes.reduce((n, c) => n + c.images, 0);
  const removed = hit.reduce((n, c) => n + c.flagged, 0);
  lane.status.findings.push(
    hit.length === 0
      ? `poisoning detection (${poisoning.method}) flagged nothing in ${total} images`
      : `poisoning detection (${poisoning.method}) removed ${removed} of ${total} images; most affected: ${hit
          .slice(0, 3)
          .map((c) => `class ${c.class} (${c.flagged} of ${c.images})`)
          .join(', ')}`,
  );
}

// A dead worker is noticed within the policy's heartbeat timeout; the retry resumes from the heartbeated checkpoint.
const trainer = (heartbeatTimeoutMs: number) =>
  proxyActivities<GpuActivities>({
    taskQueue: GPU_TASK_QUEUE,
    startToCloseTimeout: '72h',
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 20 },
  });

/** train: defended training on the gpu queue, resumable through crashes, then the ML engineer's approval. */
export async function trainStage(input: StageInput): Promise<StageResult> {
  const lane = new Swimlane(input, ['training', 'gates']);
  const { dataset } = input.policy.artifacts;
  const config = input.policy.train;
  if (!dataset || !config) return lane.fail('the policy needs artifacts.dataset and a train block');
  const unmeetable = lane.unmeetable();
  if (unmeetable) return unmeetable;
  const d = config.defense;
  const defense =
    d.kind === 'none'
      ? 'no defense'
      : d.kind === 'dp-sgd'
        ? `DP-SGD (noise ${d.noiseMultiplier}, clip ${d.clip}, sample rate ${d.sampleRate})`
        : `${d.kind} eps ${d.eps}`;
  const evidence = lane.evidenceFor();
  const split = own(dataset.splits, config.split);
  if (!split) return lane.fail(`train.split "${config.split}" is not a split of artifacts.dataset.splits`);
  // With the poisoning defense on, training on anything but the data stage's sanitised copy is refused here already
  // (the release signer would refuse it later, after people had been asked to approve the model).
  if (input.policy.data?.poisoning && !input.sanitised)
    return lane.fail('data.poisoning is set, but the data stage produced no sanitised split to train on');
  try {
    const out = await lane.task('training', `training ${config.arch} with ${defense}, ${config.epochs} epochs`, () =>
      // Policies recorded before the setting existed carry none.
      trainer(config.heartbeatTimeoutMs ?? 60_000).trainModel({
        ...splitInput(dataset, split, evidence),
        config,
        ...(input.sanitised ? { sanitised: { images: input.sanitised.images, labels: input.sanitised.labels } } : {}),
      }),
    );
    if (input.sanitised)
      lane.status.findings.push(
        `trained on the data stage's sanitised split (${input.sanitised.removed} images removed): ${input.sanitised.images}`,
      );
    const last = out.history[out.history.length - 1];
    Object.assign(lane.status.metrics, {
      'train.epochs': out.history.length,
      'train.loss': last.loss,
      'train.accuracy': last.accuracy,
    });
    const robust = out.history.flatMap((h) => (h.robustValidation === undefined ? [] : [h.robustValidation]));
    if (robust.length) lane.status.metrics['train.robust_validation'] = Math.max(...robust);
    if (out.privacy) {
      lane.status.metrics['train.privacy.epsilon'] = out.privacy.epsilon;
      lane.status.metrics['train.privacy.delta'] = out.privacy.delta;
      lane.status.findings.push(
        `DP-SGD: (ε, δ) = (${out.privacy.epsilon.toFixed(3)}, ${out.privacy.delta}) after ${out.privacy.steps} ` +
          `steps at sample rate ${out.privacy.sampleRate}, noise multiplier ${out.privacy.noiseMultiplier}, ` +
          `clip ${out.privacy.clip} (RDP order ${out.privacy.order})`,
      );
    }
    keep(lane, out.evidence);
    lane.status.artifacts.model = out.modelRef;
    if (out.checkpointRef) lane.status.artifacts.checkpoint = out.checkpointRef;
    if (out.bestEpoch) lane.status.findings.push(`early stopping kept epoch ${out.bestEpoch} of ${out.history.length}`);
    if (out.resumedFrom)
      lane.status.findings.push(
        `training resumed from a checkpoint after epoch ${out.resumedFrom.epoch}, step ${out.resumedFrom.step}`,
      );
  } catch (err) {
    return lane.fail(failureMessage(err));
  }
  const failed = await checkGates(lane, input, 'train');
  if (failed) return lane.fail(failed);
  return lane.approval();
}

/** evaluate: the policy's attack suite against the model, its gates, then the security engineer's approval. */
export async function evaluateStage(input: StageInput): Promise<StageResult> {
  const lane = new Swimlane(input, ['attacks', 'gates']);
  const { dataset, model } = input.policy.artifacts;
  const config = input.policy.evaluate;
  if (!dataset || !(model || input.modelRef) || !config)
    return lane.fail(
      'the policy needs artifacts.dataset, a model (artifacts.model or a train stage) and an evaluate block',
    );
  const unmeetable = lane.unmeetable();
  if (unmeetable) return unmeetable;
  const evidence = lane.evidenceFor();
  const split = own(dataset.splits, config.split);
  if (!split) return lane.fail(`evaluate.split "${config.split}" is not a split of artifacts.dataset.splits`);
  const members = config.privacy ? own(dataset.splits, config.privacy.members) : undefined;
  const request = {
    modelPath: model?.path,
    modelSha256: model?.sha256,
    modelRef: input.modelRef,
    ...splitInput(dataset, split, evidence),
    config,
    ...(members
      ? { members: { split: members, ...(evidence ? { pinned: pinnedPair(dataset.files, members) } : {}) } }
      : {}),
    ...(input.policy.monitor ? { reference: true } : {}),
  };
  // Sharded: the parts run side by side on gpu workers and are merged exactly; they are signed evidence, so a
  // pipeline without evidence (v1) evaluates in one activity.
  const asked = evidence ? (config.shards ?? 1) : 1;
  try {
    const what = `attacking the model: ${config.attacks.map((a) => a.id).join(', ')}`;
    const parts = asked === 'auto' ? ' (one part per gpu worker)' : asked > 1 ? ` (${asked} parts)` : '';
    const out = await lane.task('attacks', what + parts, async () => {
      const shards = asked === 'auto' ? await cpu.countGpuWorkers() : asked;
      if (shards === 1) return gpu.evaluateModel(request);
      const parts = await Promise.all(
        Array.from({ length: shards }, (_v, index) =>
          gpu.evaluateShard({ ...request, shard: { index, count: shards } }),
        ),
      );
      return gpu.mergeEvaluation({ ...request, parts });
    });
    Object.assign(lane.status.metrics, out.metrics);
    lane.status.evaluation = out.summary;
    lane.status.artifacts.model = out.modelRef;
    keep(lane, out.evidence);
    if (out.summary.withoutGradient.length)
      lane.status.findings.push(
        `the model has ops without a gradient rule (${out.summary.withoutGradient.join(', ')}): white-box attacks ran as Square Attack`,
      );
  } catch (err) {
    return lane.fail(failureMessage(err));
  }
  const failed = await checkGates(lane, input, 'evaluate');
  if (failed) return lane.fail(failed);
  return lane.approval();
}

/** Evaluates the policy's gates on this stage's metrics; returns why the stage fails, if it does. */
async function checkGates(lane: Swimlane, input: StageInput, stage: string): Promise<string | undefined> {
  const failed = await lane.task('gates', `checking the ${stage} gates`, async () => {
    lane.gates(
      input.policy.gates
        .filter((g) => g.metric.startsWith(`${stage}.`))
        .map((g) => evaluateGate(g, lane.status.metrics)),
    );
    return lane.status.gates.filter((g) => !g.passed);
  });
  if (failed.length === 0) return undefined;
  return `failed gates: ${failed.map((g) => `${g.id} (${g.metric} ${g.op} ${g.value}, measured ${g.measured === undefined ? 'nothing' : formatMetric(g.measured)})`).join(', ')}`;
}

export interface ReleaseInput extends StageInput {
  /** Histories before the trust boundary: the earlier stages' statuses, which the release signed as given. */
  earlier?: StageStatus[];
  /** The pipeline's audit trail before this stage (chained past the trust boundary). */
  audit: AuditEntry[];
  manifest?: ManifestEntry[];
  /** Past the trust boundary: each earlier stage's evidence, for the signer to check with the start evidence. */
  evidence?: { name: StageStatus['name']; evidence: Evidence[] }[];
}

/**
 * release: the two-person approval, then the signature. The signer re-checks every piece of evidence, every
 * decision (this stage's included) and the audit chain before the release key signs anything. Runs recorded before
 * the trust boundary signed first and asked for approval after.
 */
export async function releaseStage(input: ReleaseInput): Promise<StageResult> {
  const lane = new Swimlane(input, ['sign']);
  if (!lane.v2) return legacyRelease(input, lane);
  const unmeetable = lane.unmeetable();
  if (unmeetable) return unmeetable;
  const refused = await lane.approved();
  if (refused) return refused;
  try {
    const signed = await lane.task('sign', 'checking the evidence and signing the release attestation', () =>
      cpu.signRelease({
        dossier: {
          pipelineId: input.pipelineId,
          start: input.start!,
          stages: input.evidence ?? [],
          audit: [...input.audit, ...lane.audit],
        },
        ...(input.policy.artifacts.model ? { model: input.policy.artifacts.model } : {}),
      }),
    );
    recordSigned(lane, signed);
  } catch (err) {
    return lane.fail(failureMessage(err));
  }
  return lane.pass();
}

function recordSigned(
  lane: Swimlane,
  signed: { ref: string; path: string; keyId: string; modelSha256?: string },
): void {
  lane.status.artifacts.attestation = signed.ref;
  lane.status.artifacts.attestationPath = signed.path;
  lane.status.artifacts.releaseKeyId = signed.keyId;
  if (signed.modelSha256) lane.status.artifacts.model = `sha256:${signed.modelSha256}`;
}

async function legacyRelease(input: ReleaseInput, lane: Swimlane): Promise<StageResult> {
  try {
    // The request as runs before the trust boundary sent it. Only their histories replay this path (activities do
    // not run on replay); a live run that reached it would have its request refused by the signer.
    const legacyRequest = {
      pipelineId: input.pipelineId,
      subject: input.subject,
      policyName: input.policy.name,
      dataset: input.manifest ?? [],
      model: input.policy.artifacts.model,
      modelRef: input.modelRef,
      stages: (input.earlier ?? []).map((s) => ({ name: s.name, state: s.state, metrics: s.metrics, gates: s.gates })),
      audit: input.audit,
    };
    const signed = await lane.task('sign', 'signing the release attestation', () =>
      cpu.signRelease(legacyRequest as unknown as ReleaseRequest),
    );
    recordSigned(lane, signed);
  } catch (err) {
    return lane.fail(failureMessage(err));
  }
  return lane.approval();
}

/** Keeps an activity's signed result for the release signer (nothing to keep before the trust boundary). */
function keep(lane: Swimlane, e: Evidence | undefined): void {
  if (e) lane.evidence.push(e);
}

/** The pinned digests of a split's two files, which the engine checks while it reads them. */

function failureMessage(err: unknown): string {
  // Cancellation is not a stage verdict: let it end the workflow as cancelled.
  if (isCancellation(err)) throw err;
  return causeMessage(err);
}
