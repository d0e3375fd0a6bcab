// Evidence: what a worker measured, signed where it was measured with the workers' evidence key. The release
// signer and `verify` believe a digest, a metric or a resolved policy only from evidence whose signature checks.
// Canonical bytes live here (pure JS) so workers, workflow code and `verify` agree; signing needs the private key
// and happens in activities/.
import { canonicalJson, sha256Hex, utf8 } from './canonical.js';
import { decodeBase64 } from './base64.js';
import { verifySignature } from './decision.js';
import type { Policy, StageName } from './types.js';
import type { Subject } from './subject.js';

export interface FileDigest {
  path: string;
  sha256: string;
  bytes?: number;
}

/** How a start was authenticated, as the worker that checked it recorded. */
export type StartAuthentication =
  | { channel: 'cli'; keyId: string }
  | { channel: 'github-oidc'; repository: string; runId?: string; actor?: string; jti: string }
  /** A retrain resolving a monitor incident: who decided it, on which monitor and incident. */
  | { channel: 'retrain'; monitor: string; incident: number; decidedBy: string; decisionChannel: string };

export interface StartPayload {
  subject: Subject;
  policy: Policy;
  policyRef: string;
  /** Where the worker read the policy: its local policy root, or a repository's base commit through GitHub. */
  policySource: { kind: 'local'; root: string } | { kind: 'github'; repo: string; ref: string };
  authenticatedBy: StartAuthentication;
}

export interface ManifestPayload {
  files: FileDigest[];
}

export interface SplitSummary {
  split: string;
  images: number;
  rows: number;
  cols: number;
  classCounts: number[];
  pixelMean: number;
  pixelStd: number;
  pixelMin: number;
  pixelMax: number;
}

export interface ValidationPayload {
  /** Every dataset file read, with the digest computed while reading it. */
  dataset: FileDigest[];
  splits: SplitSummary[];
  metrics: Record<string, number>;
}

export interface ModelPayload {
  /** The model produced (training) or attacked (evaluation). */
  modelSha256: string;
  /** The files read, each hashed while it was read and equal to its pinned digest. */
  dataset: FileDigest[];
  metrics: Record<string, number>;
  /** The policy's train or evaluate block the work followed (the signer compares it with the policy's). */
  config: unknown;
  /** Evaluation for a monitored release: the clean images summarised, the monitor's drift reference. */
  reference?: DriftReference;
}

/**
 * One part of a sharded evaluation, signed where it ran: the merge checks every part against the others and the
 * stage before it signs the evaluation (parts never reach the release).
 */
export interface EvaluationShardPayload {
  modelSha256: string;
  dataset: FileDigest[];
  config: unknown;
  /** Part `index` of `count`: images [start, end) of the set's `images`. */
  shard: { index: number; count: number; start: number; end: number; images: number };
  /** `sha256:<hex>` of the part's per-image values (engine EvaluatePart, JSON) in the artifact store. */
  results: string;
}

/** The monitor's reference: clean images summarised by engine/monitor/stats.ts (each list sorted ascending). */
export interface DriftReference {
  inputs: number;
  mean: number[];
  std: number[];
  conf: number[];
  classCounts: number[];
}

/** The data stage's poisoning defense: what it read, what it removed, and the sanitised copy it stored. */
export interface SanitisationPayload {
  split: string;
  /** The split's two files, each hashed while it was read and equal to its pinned digest. */
  dataset: FileDigest[];
  /** The sanitised copy of the split in the artifact store, and the list of removed indices (JSON). */
  output: { images: string; labels: string; removed: string };
  images: number;
  removed: number;
  metrics: Record<string, number>;
  /** The policy's data.poisoning block the work followed. */
  config: unknown;
}

/** How training evidence names a split file it read in its sanitised copy (the data stage's output). */
export function sanitisedPath(path: string): string {
  return `${path}#sanitised`;
}

export interface EvidencePayloads {
  start: StartPayload;
  manifest: ManifestPayload;
  validation: ValidationPayload;
  sanitisation: SanitisationPayload;
  training: ModelPayload;
  evaluation: ModelPayload;
  'evaluation-shard': EvaluationShardPayload;
}
export type EvidenceKind = keyof EvidencePayloads;

export interface EvidenceBody<K extends EvidenceKind = EvidenceKind> {
  v: 1;
  kind: K;
  pipelineId: string;
  /** The workflow whose activity produced it, as the Temporal server told the activity (not as a client claimed). */
  workflowId: string;
  stage?: StageName;
  subjectDigest: string;
  policyDigest: string;
  /** ISO 8601, the worker's clock. */
  issuedAt: string;
  payload: EvidencePayloads[K];
}

export interface Evidence<K extends EvidenceKind = EvidenceKind> {
  body: EvidenceBody<K>;
  /** keyId() of the evidence public key. */
  keyId: string;
  /** Base64 Ed25519 signature over canonicalEvidence(body). */
  signature: string;
}

const DOMAIN = 'secmlops-evidence-v1\n';

export function canonicalEvidence(body: EvidenceBody): Uint8Array {
  return utf8(DOMAIN + canonicalJson(body));
}

/** The first 16 hex digits of the SHA-256 of a raw Ed25519 public key (base64): names a key in messages. */
export function keyIdOf(publicKeyBase64: string): string {
  const raw = decodeBase64(publicKeyBase64);
  return raw ? sha256Hex(raw).slice(0, 16) : 'invalid-key';
}

/** Why the evidence must not be believed, or undefined when its signature checks with the trusted key. */
export function evidenceProblem(e: unknown, publicKeyBase64: string, kind?: EvidenceKind): string | undefined {
  const ev = e as Evidence;
  if (!ev || typeof ev !== 'object' || !ev.body || typeof ev.body !== 'object')
    return 'evidence is not an object with a body';
  if (ev.body.v !== 1) return `evidence version ${String(ev.body.v)} is not 1`;
  if (kind && ev.body.kind !== kind) return `expected ${kind} evidence, got ${String(ev.body.kind)}`;
  let bytes: Uint8Array;
  try {
    bytes = canonicalEvidence(ev.body);
  } catch (err) {
    return `evidence has no canonical form: ${(err as Error).message}`;
  }
  if (!verifySignature(ev.signature, bytes, publicKeyBase64)) {
    return `the ${String(ev.body.kind)} evidence's signature does not verify with the evidence key ${keyIdOf(publicKeyBase64)}`;
  }
  return undefined;
}

/** The digests the policy pins for a split's two files (either may be missing). */
export function pinnedPair(
  files: readonly FileDigest[],
  split: { images: string; labels: string },
): { images?: string; labels?: string } {
  return {
    images: files.find((f) => f.path === split.images)?.sha256,
    labels: files.find((f) => f.path === split.labels)?.sha256,
  };
}
