// The signer verifies. Before the release key signs, `signRelease` hands everything it was given to checkRelease,
// which believes nothing the orchestration says: the subject and the policy come from the start evidence a worker
// signed, digests and metrics from the stages' evidence, approvals from the channel-signed decisions in the audit
// chain. `secmlops verify` runs the same function on an attestation, so what was checked before signing can be
// checked again by anyone holding the release public key.
import type { AuditEntry } from './audit.js';
import { canonicalJson } from './canonical.js';
import {
  evidenceProblem,
  sanitisedPath,
  type Evidence,
  type EvidenceKind,
  type FileDigest,
  type ModelPayload,
} from './evidence.js';
import { evaluateGate, type GateResult } from './gates.js';
import { own } from './own.js';
import { subjectDigest, type Subject } from './subject.js';
import { threatMatrix, describeCell } from './threat-model.js';
import { checkTrail } from './trail-check.js';
import type { Policy, StageName } from './types.js';

export { checkTrail, type TrailCheck } from './trail-check.js';

/** Everything a release stands on, as the pipeline gathered it. Nothing in it is trusted until checked. */
export interface ReleaseDossier {
  pipelineId: string;
  /** The workers' evidence public key (base64 raw Ed25519), from the signer's own configuration. */
  evidenceKey: string;
  start: Evidence;
  /** The evidence each stage before release produced. */
  stages: { name: StageName; evidence: Evidence[] }[];
  /** The chained audit trail up to the release stage's approval. */
  audit: AuditEntry[];
}

/** What checkRelease established: the facts an attestation may state. */
export interface CheckedRelease {
  subject: Subject;
  subjectDigest: string;
  policy: Policy;
  policyDigest: string;
  /** The dataset files, as the data stage's manifest evidence measured them (and the policy pins). */
  dataset: FileDigest[];
  /** The data stage's sanitised copy of the training split, as its sanitisation evidence measured it. */
  sanitised?: SanitisedSplit;
  /** DP-SGD's guarantee, as the training evidence measured it, with the mechanism's parameters the policy set. */
  privacy?: { epsilon: number; delta: number; noiseMultiplier: number; clip: number; sampleRate: number };
  /** The model trained or evaluated, as evidence measured it. */
  model?: { sha256: string; measuredBy: 'train' | 'evaluate' };
  stages: { name: StageName; metrics: Record<string, number>; gates: GateResult[] }[];
}

export interface SanitisedSplit {
  split: string;
  method: string;
  /** The originals' digests, then the copy's (artifact store) and the removed indices' list. */
  from: FileDigest[];
  images: string;
  labels: string;
  removedList: string;
  removed: number;
  of: number;
}

/**
 * The dataset subjects an attestation names: every pinned file as the manifest measured it, then (with the poisoning
 * defense) the sanitised split the model was trained on and the list of what was removed.
 */
export function datasetSubjects(release: CheckedRelease): { name: string; sha256: string }[] {
  const out = release.dataset.map((f) => ({ name: `dataset/${f.path}`, sha256: f.sha256 }));
  const s = release.sanitised;
  const split = s && own(release.policy.artifacts.dataset?.splits, s.split);
  if (s && split)
    out.push(
      { name: `sanitised/${split.images}`, sha256: s.images },
      { name: `sanitised/${split.labels}`, sha256: s.labels },
      { name: `sanitised/${s.split}/removed.json`, sha256: s.removedList },
    );
  return out;
}

/**
 * `upTo: 'release'` (the release signer, `verify`): everything before the release stage, and the release approval.
 * `upTo: 'passed'` (the GitHub verdict): a finished pipeline that passed, release or not — every stage's evidence,
 * every stage ended passed, every approval met.
 */
export function checkRelease(
  d: ReleaseDossier,
  opts: { upTo?: 'release' | 'passed' } = {},
): { problems: string[]; release?: CheckedRelease } {
  const upTo = opts.upTo ?? 'release';
  const problems: string[] = [];
  const startProblem = evidenceProblem(d.start, d.evidenceKey, 'start');
  if (startProblem) return { problems: [`start: ${startProblem}`] };
  const start = d.start as Evidence<'start'>;
  const { subject, policy } = start.body.payload;
  const digest = subjectDigest(subject);
  const policyDigest = start.body.policyDigest;
  if (start.body.pipelineId !== d.pipelineId || start.body.workflowId !== d.pipelineId) {
    return { problems: [`start: the start evidence is for pipeline ${start.body.workflowId}, not ${d.pipelineId}`] };
  }
  if (start.body.subjectDigest !== digest)
    return { problems: ['start: the start evidence’s subject digest does not match its subject'] };

  const releaseAt = policy.stages.findIndex((s) => s.name === 'release');
  if (releaseAt < 0 && upTo === 'release')
    return { problems: ['the policy has no release stage, so nothing may be released under it'] };
  const before = releaseAt < 0 ? policy.stages : policy.stages.slice(0, releaseAt);
  const ran = d.stages.map((s) => s.name).join(', ');
  if (ran !== before.map((s) => s.name).join(', '))
    problems.push(
      `the stages before release were [${ran}], but the policy lists [${before.map((s) => s.name).join(', ')}]`,
    );

  const pinned = new Map((policy.artifacts.dataset?.files ?? []).map((f) => [f.path, f.sha256]));
  const release: CheckedRelease = { subject, subjectDigest: digest, policy, policyDigest, dataset: [], stages: [] };
  for (const stage of d.stages) {
    const name = stage.name;
    const where = `stage ${name}`;
    const evidence: Evidence[] = [];
    for (const e of Array.isArray(stage.evidence) ? stage.evidence : []) {
      const why = evidenceProblem(e, d.evidenceKey);
      if (why) {
        problems.push(`${where}: ${why}`);
        continue;
      }
      const b = e.body;
      if (b.pipelineId !== d.pipelineId || b.workflowId !== `${d.pipelineId}/${name}` || b.stage !== name) {
        problems.push(
          `${where}: ${b.kind} evidence was produced by ${b.workflowId} (stage ${String(b.stage)}), not by this pipeline's ${name} stage`,
        );
      } else if (b.subjectDigest !== digest)
        problems.push(
          `${where}: ${b.kind} evidence is for another change (subject digest ${b.subjectDigest.slice(0, 12)}…)`,
        );
      else if (b.policyDigest !== policyDigest)
        problems.push(
          `${where}: ${b.kind} evidence was produced under another policy (digest ${b.policyDigest.slice(0, 12)}…)`,
        );
      else evidence.push(e);
    }
    const one = <K extends EvidenceKind>(kind: K): Evidence<K> | undefined => {
      const found = evidence.filter((e) => e.body.kind === kind);
      if (found.length !== 1)
        problems.push(`${where}: expected one piece of ${kind} evidence with a valid signature, found ${found.length}`);
      return found.length === 1 ? (found[0] as Evidence<K>) : undefined;
    };
    let metrics: Record<string, number> = {};
    const readAsPinned = (files: FileDigest[], what: string) => {
      for (const f of files) {
        const want = pinned.get(f.path);
        if (want === undefined) problems.push(`${where}: ${what} read ${f.path}, which the policy does not pin`);
        else if (want !== f.sha256)
          problems.push(`${where}: ${what} read ${f.path} with SHA-256 ${f.sha256}, but the policy pins ${want}`);
      }
    };
    if (name === 'plan') {
      const cells = threatMatrix(policy.threatModel);
      if (cells.length === 0) problems.push(`${where}: the threat model names no assets`);
      for (const c of cells)
        if (c.status === 'uncovered')
          problems.push(`${where}: ${describeCell(c)} has neither a control nor a risk acceptance`);
    } else if (name === 'data') {
      const manifest = one('manifest');
      if (manifest) {
        const files = manifest.body.payload.files;
        readAsPinned(files, 'the manifest');
        const seen = new Set(files.map((f) => f.path));
        for (const path of pinned.keys())
          if (!seen.has(path)) problems.push(`${where}: the manifest does not cover ${path}, which the policy pins`);
        if (seen.size !== files.length) problems.push(`${where}: the manifest lists a file twice`);
        release.dataset = files.map((f) => ({ path: f.path, sha256: f.sha256 }));
      }
      const poisoning = policy.data?.poisoning;
      const cleaned = poisoning ? one('sanitisation') : undefined;
      if (!poisoning && evidence.some((e) => e.body.kind === 'sanitisation'))
        problems.push(`${where}: sanitisation evidence, but the policy sets no data.poisoning`);
      if (cleaned && poisoning) {
        const p = cleaned.body.payload;
        readAsPinned(p.dataset ?? [], 'sanitisation');
        const split = own(policy.artifacts.dataset?.splits, poisoning.split);
        const files = (p.dataset ?? []).map((f) => f.path).join(', ');
        if (!split || p.split !== poisoning.split || files !== `${split.images}, ${split.labels}`)
          problems.push(`${where}: sanitisation read [${files}], not the files of data.poisoning.split`);
        if (!sameJson(p.config, poisoning))
          problems.push(`${where}: sanitisation followed another configuration than the policy's data.poisoning`);
        const hex = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
        const counts = Number.isInteger(p.images) && Number.isInteger(p.removed) && p.removed >= 0;
        if (!hex(p.output?.images) || !hex(p.output?.labels) || !hex(p.output?.removed) || !counts)
          problems.push(`${where}: the sanitisation evidence has no well-formed output digests and counts`);
        else if (p.removed > poisoning.maxRemoval * p.images)
          problems.push(`${where}: sanitisation removed ${p.removed} of ${p.images} images, more than maxRemoval`);
        else
          release.sanitised = {
            split: p.split,
            method: poisoning.method,
            from: (p.dataset ?? []).map((f) => ({ path: f.path, sha256: f.sha256 })),
            images: p.output.images,
            labels: p.output.labels,
            removedList: p.output.removed,
            removed: p.removed,
            of: p.images,
          };
      }
      const validation = one('validation');
      if (validation) {
        readAsPinned(validation.body.payload.dataset, 'validation');
        metrics = { ...ownMetrics(validation.body.payload.metrics), ...ownMetrics(cleaned?.body.payload.metrics) };
        const validated = (validation.body.payload.splits ?? []).map((s) => s.split).join(', ');
        const listed = Object.keys(policy.artifacts.dataset?.splits ?? {}).join(', ');
        if (validated !== listed)
          problems.push(`${where}: validation covered splits [${validated}], but the policy lists [${listed}]`);
      }
    } else if (name === 'train' || name === 'evaluate') {
      const e = one(name === 'train' ? 'training' : 'evaluation');
      if (e) {
        const p: ModelPayload = e.body.payload;
        const block = name === 'train' ? policy.train : policy.evaluate;
        if (!sameJson(p.config, block))
          problems.push(`${where}: the work followed another ${name} configuration than the policy's ${name} block`);
        const split = own(policy.artifacts.dataset?.splits, block?.split);
        const files = (p.dataset ?? []).map((f) => f.path).join(', ');
        const clean = name === 'train' ? release.sanitised : undefined;
        if (name === 'train' && policy.data?.poisoning && !clean)
          problems.push(
            `${where}: data.poisoning is set, but no sanitised split was established to check training against`,
          );
        else if (clean && split) {
          // Poisoning defense on: training must have read the sanitised copy the data stage measured, nothing else.
          const want = [
            { path: sanitisedPath(split.images), sha256: clean.images },
            { path: sanitisedPath(split.labels), sha256: clean.labels },
          ];
          if (!sameJson(p.dataset, want))
            problems.push(
              `${where}: training read [${files}], not the data stage's sanitised split (${clean.images.slice(0, 12)}…)`,
            );
        } else {
          readAsPinned(p.dataset, name === 'train' ? 'training' : 'evaluation');
          // Membership inference also reads the members split (the training data), after the evaluated one.
          const privacy = name === 'evaluate' ? policy.evaluate?.privacy : undefined;
          const members = privacy && own(policy.artifacts.dataset?.splits, privacy.members);
          const want = [split, ...(members ? [members] : [])].map((s) => s && `${s.images}, ${s.labels}`).join(', ');
          if (!split || files !== want)
            problems.push(`${where}: read [${files}], not the policy's ${name}.split files`);
        }
        metrics = p.metrics;
        if (name === 'train') release.model = { sha256: p.modelSha256, measuredBy: 'train' };
        const d = name === 'train' ? policy.train?.defense : undefined;
        if (d?.kind === 'dp-sgd') {
          const eps = ownMetrics(p.metrics)['train.privacy.epsilon'];
          if (!(eps >= 0)) problems.push(`${where}: DP-SGD training evidence states no ε (train.privacy.epsilon)`);
          else
            release.privacy = {
              epsilon: eps,
              delta: d.delta,
              noiseMultiplier: d.noiseMultiplier,
              clip: d.clip,
              sampleRate: d.sampleRate,
            };
        } else if (release.model && release.model.sha256 !== p.modelSha256) {
          problems.push(`${where}: evaluated model ${p.modelSha256}, not the trained model ${release.model.sha256}`);
        } else {
          const pin = policy.artifacts.model?.sha256;
          if (!release.model && pin && pin !== p.modelSha256)
            problems.push(`${where}: evaluated model ${p.modelSha256}, but the policy pins ${pin}`);
          release.model ??= { sha256: p.modelSha256, measuredBy: 'evaluate' };
        }
      }
    }
    const gates = policy.gates
      .filter((g) => g.metric.startsWith(`${name}.`))
      .map((g) => evaluateGate(g, ownMetrics(metrics)));
    for (const g of gates)
      if (!g.passed)
        problems.push(
          `${where}: gate ${g.id} (${g.metric} ${g.op} ${g.value}) ${g.measured === undefined ? 'was not measured' : `failed with ${g.measured}`}`,
        );
    release.stages.push({ name, metrics: ownMetrics(metrics), gates });
  }
  problems.push(...checkTrail({ pipelineId: d.pipelineId, policy, subject, audit: d.audit, upTo }));
  return { problems, release };
}

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/** Metrics as own properties only: a key like "constructor" in signed JSON never reaches a gate as a function. */
function ownMetrics(m: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (!m || typeof m !== 'object') return out;
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number') out[k] = v;
  return out;
}
