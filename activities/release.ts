import { ApplicationFailure } from '@temporalio/common';
import type { GateResult } from '../policy/index.js';
import type { AuditEntry, ManifestEntry, Subject } from '../workflows/messages.js';
import { PREDICATE_TYPE, signEnvelope, type Statement } from './attestation.js';
import { keyId, loadPrivateKey, rawPublicKey } from './keys.js';
import { hashFile } from './manifest.js';
import type { ArtifactStore } from './store.js';

export interface ReleaseRequest {
  pipelineId: string;
  subject: Subject;
  policyName: string;
  dataset: ManifestEntry[];
  model?: { path: string; sha256?: string };
  /** A model a train stage produced; attested instead of model. */
  modelRef?: string;
  stages: { name: string; state: string; metrics: Record<string, number>; gates: GateResult[] }[];
  audit: AuditEntry[];
}

export interface ReleaseSigned {
  ref: string;
  path: string;
  keyId: string;
  modelSha256?: string;
}

/** Signs what exists: dataset digests, the model's digest when there is one, the stages' verdicts, the audit trail. */
export async function signRelease(store: ArtifactStore, keyPath: string, req: ReleaseRequest): Promise<ReleaseSigned> {
  const key = await loadPrivateKey(keyPath).catch((e: Error) => {
    throw ApplicationFailure.nonRetryable(`release signing key: ${e.message}`, 'SigningKey');
  });
  const subjects: Statement['subject'] = req.dataset.map((f) => ({ name: `dataset/${f.path}`, digest: { sha256: f.sha256 } }));
  let modelSha256: string | undefined;
  if (req.modelRef) {
    // Read through the store so a model changed since training is refused.
    await store.get(req.modelRef).catch((e: Error) => {
      throw ApplicationFailure.nonRetryable(`model ${req.modelRef}: ${e.message}`, 'ModelMissing');
    });
    modelSha256 = req.modelRef.replace(/^sha256:/, '');
    subjects.push({ name: 'model', digest: { sha256: modelSha256 } });
  } else if (req.model) {
    const got = await hashFile(req.model.path).catch((e: NodeJS.ErrnoException) => {
      throw ApplicationFailure.nonRetryable(`model ${req.model!.path} cannot be read (${e.code ?? e.message})`, 'ModelMissing');
    });
    if (req.model.sha256 && req.model.sha256 !== got.sha256) {
      throw ApplicationFailure.nonRetryable(`model ${req.model.path} has SHA-256 ${got.sha256}, but the policy pins ${req.model.sha256}`, 'ModelDigestMismatch');
    }
    modelSha256 = got.sha256;
    subjects.push({ name: 'model', digest: { sha256: got.sha256 } });
  }
  if (subjects.length === 0) throw ApplicationFailure.nonRetryable('nothing to attest: no dataset manifest and no model', 'EmptyRelease');
  const statement: Statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: subjects,
    predicateType: PREDICATE_TYPE,
    predicate: { pipeline: req.pipelineId, policy: req.policyName, change: req.subject, stages: req.stages, audit: req.audit },
  };
  const envelope = signEnvelope(statement, key);
  const stored = await store.put(Buffer.from(JSON.stringify(envelope, null, 2) + '\n'));
  return { ref: stored.ref, path: stored.path, keyId: keyId(rawPublicKey(key)), modelSha256 };
}
