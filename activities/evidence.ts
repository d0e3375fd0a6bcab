// The workers' evidence key: every activity that measures something the release will state (the resolved start,
// the dataset manifest, validation, training, evaluation) signs its result with it where it was measured. The
// release signer re-checks those signatures, so a forged Signal, a directly started stage or a rogue process that
// completes tasks cannot feed it numbers no worker measured. Heartbeat details that a retry resumes from are
// sealed with the same key: they come back from the server, and a task poller could have written them.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { sign, type KeyObject } from 'node:crypto';
import {
  canonicalEvidence,
  canonicalJson,
  verifySignature,
  type Evidence,
  type EvidenceKind,
  type EvidencePayloads,
  type StageName,
} from '../policy/index.js';
import { keyId, loadPrivateKey, rawPublicKey } from './keys.js';

/** What the workflow says the evidence is about; the signer adds which workflow actually asked. */
export interface EvidenceContext {
  pipelineId: string;
  stage?: StageName;
  subjectDigest: string;
  policyDigest: string;
}

export interface EvidenceSigner {
  publicKey: string;
  keyId: string;
  sign<K extends EvidenceKind>(kind: K, ctx: EvidenceContext, payload: EvidencePayloads[K]): Evidence<K>;
  seal<T>(value: T): Sealed<T>;
  open<T>(sealed: unknown): T | undefined;
}

export interface Sealed<T> {
  value: T;
  sig: string;
}

/** Loads the key once, on first use; a worker without it refuses evidence work by name (fails closed). */
export function evidenceSigner(keyPath: string): () => Promise<EvidenceSigner> {
  let loaded: Promise<EvidenceSigner> | undefined;
  return () =>
    (loaded ??= loadPrivateKey(keyPath).then(makeSigner, (e: Error) => {
      loaded = undefined;
      throw ApplicationFailure.nonRetryable(
        `evidence signing key: ${e.message} (set SECMLOPS_EVIDENCE_KEY)`,
        'EvidenceKey',
      );
    }));
}

export function makeSigner(key: KeyObject): EvidenceSigner {
  const publicKey = rawPublicKey(key);
  const id = keyId(publicKey);
  const sealBytes = (scope: string, value: unknown) =>
    new TextEncoder().encode(`secmlops-progress-v1\n${scope}\n${canonicalJson(value)}`);
  return {
    publicKey,
    keyId: id,
    sign(kind, ctx, payload) {
      // Signed as the JSON it travels as: what a verifier gets back after Temporal's payload conversion.
      const body = asJson({
        v: 1 as const,
        kind,
        pipelineId: ctx.pipelineId,
        workflowId: callingWorkflow(),
        ...(ctx.stage ? { stage: ctx.stage } : {}),
        subjectDigest: ctx.subjectDigest,
        policyDigest: ctx.policyDigest,
        issuedAt: new Date().toISOString(),
        payload,
      });
      return { body, keyId: id, signature: sign(null, canonicalEvidence(body), key).toString('base64') };
    },
    seal(raw) {
      const value = asJson(raw);
      return { value, sig: sign(null, sealBytes(progressScope(), value), key).toString('base64') };
    },
    open<T>(sealed: unknown): T | undefined {
      const s = sealed as Sealed<T> | undefined;
      if (!s || typeof s !== 'object' || typeof s.sig !== 'string') return undefined;
      try {
        return verifySignature(s.sig, sealBytes(progressScope(), s.value), publicKey) ? s.value : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** Evidence about a split is only worth signing when the engine checked the files against pinned digests. */
export function requirePins(
  input: { evidence?: unknown; pinned?: { images?: string; labels?: string } },
  work: string,
): void {
  if (input.evidence && (!input.pinned?.images || !input.pinned.labels)) {
    throw ApplicationFailure.nonRetryable(
      `${work} evidence needs the split’s pinned digests (artifacts.dataset.files)`,
      'DatasetNotPinned',
    );
  }
}

/** A value as JSON gives it back: plain objects only, undefined members dropped. */
function asJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The workflow that scheduled this activity, as the Temporal server delivered the task (not a client's claim). */
export function callingWorkflow(): string {
  return scheduledBy().workflowId;
}

function scheduledBy(): { workflowId: string; runId: string } {
  const w = Context.current().info.workflowExecution;
  if (!w)
    throw ApplicationFailure.nonRetryable(
      'evidence is signed only for activities that a workflow scheduled',
      'EvidenceContext',
    );
  return w;
}

/** Progress belongs to one activity of one workflow run: a sealed heartbeat from elsewhere does not open here. */
function progressScope(): string {
  const w = scheduledBy();
  return `${w.workflowId}/${w.runId}/${Context.current().info.activityId}`;
}
