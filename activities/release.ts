// The release signer verifies before it signs. It is handed a dossier (the start evidence, every earlier stage's
// evidence and the audit chain up to the release approval) and believes none of it until checkRelease has checked
// every evidence signature with this worker pool's evidence key, every decision against the policy's channel keys,
// the chain and every stage's approval rule. Only the facts that check out go into the attestation.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { RegularFileError } from '../engine/io/regular-file.js';
import { checkRelease, datasetSubjects, type ReleaseDossier } from '../policy/index.js';
import type { ReleasePredicate } from '../policy/attestation.js';
import { PREDICATE_TYPE, signEnvelope, type Statement } from './attestation.js';
import type { EvidenceSigner } from './evidence.js';
import { keyId, loadPrivateKey, rawPublicKey } from './keys.js';
import { hashFile } from './manifest.js';
import type { ArtifactStore } from './store.js';

export interface ReleaseRequest {
  /** Everything but the evidence key, which the signer takes from its own configuration. */
  dossier: Omit<ReleaseDossier, 'evidenceKey'>;
  /** The policy's model file, measured here when no stage's evidence measured a model. */
  model?: { path: string; sha256?: string };
}

export interface ReleaseSigned {
  ref: string;
  path: string;
  keyId: string;
  modelSha256?: string;
}

export type { ReleasePredicate } from '../policy/attestation.js';

export async function signRelease(
  store: ArtifactStore,
  keyPath: string,
  signer: () => Promise<EvidenceSigner>,
  req: ReleaseRequest,
): Promise<ReleaseSigned> {
  if (!req || typeof req !== 'object' || !req.dossier) {
    throw ApplicationFailure.nonRetryable(
      'refusing to sign: the request carries no dossier to check (a request shaped as before the trust boundary is never signed)',
      'ReleaseRefused',
    );
  }
  const key = await loadPrivateKey(keyPath).catch((e: Error) => {
    throw ApplicationFailure.nonRetryable(`release signing key: ${e.message}`, 'SigningKey');
  });
  const evidenceKey = (await signer()).publicKey;
  const dossier: ReleaseDossier = { ...req.dossier, evidenceKey };
  const { problems, release } = checkRelease(dossier);
  if (problems.length || !release) {
    throw ApplicationFailure.nonRetryable(
      `refusing to sign the release: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
      'ReleaseRefused',
    );
  }
  const subjects: Statement['subject'] = datasetSubjects(release).map((f) => ({
    name: f.name,
    digest: { sha256: f.sha256 },
  }));
  let model: { sha256: string; by: 'train' | 'evaluate' | 'signer' } | undefined = release.model
    ? { sha256: release.model.sha256, by: release.model.measuredBy }
    : undefined;
  const policyModel = release.policy.artifacts.model;
  if (!model && policyModel) {
    // The policy names a model no stage measured: hash it here, against its pin when it has one.
    // Heartbeats while it reads: a large model takes longer to hash than the heartbeat timeout.
    const ctx = Context.current();
    const got = await hashFile(policyModel.path, ctx.cancellationSignal, () => ctx.heartbeat()).catch((e: unknown) => {
      const why = e instanceof RegularFileError ? e.why : `cannot read it (${(e as Error).message})`;
      throw ApplicationFailure.nonRetryable(`model ${policyModel.path}: ${why}`, 'ModelMissing');
    });
    if (policyModel.sha256 && policyModel.sha256 !== got.sha256) {
      throw ApplicationFailure.nonRetryable(
        `model ${policyModel.path} has SHA-256 ${got.sha256}, but the policy pins ${policyModel.sha256}`,
        'ModelDigestMismatch',
      );
    }
    model = { sha256: got.sha256, by: 'signer' };
  }
  if (model && model.by !== 'signer') {
    // Read through the store so a model changed since it was measured is refused.
    await store.get(`sha256:${model.sha256}`).catch((e: Error) => {
      throw ApplicationFailure.nonRetryable(`model sha256:${model.sha256}: ${e.message}`, 'ModelMissing');
    });
  }
  if (model) subjects.push({ name: 'model', digest: { sha256: model.sha256 } });
  if (subjects.length === 0)
    throw ApplicationFailure.nonRetryable('nothing to attest: no dataset manifest and no model', 'EmptyRelease');
  const { pipelineId: _pipelineId, evidenceKey: _evidenceKey, ...rest } = dossier;
  const predicate: ReleasePredicate = {
    pipeline: dossier.pipelineId,
    change: release.subject,
    subjectDigest: release.subjectDigest,
    policyName: release.policy.name,
    policyDigest: release.policyDigest,
    evidenceKey,
    ...(model ? { modelMeasuredBy: model.by } : {}),
    stages: release.stages,
    ...(release.sanitised ? { sanitisation: release.sanitised } : {}),
    ...(release.privacy ? { privacy: release.privacy } : {}),
    dossier: rest,
  };
  const statement: Statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: subjects,
    predicateType: PREDICATE_TYPE,
    predicate: predicate as unknown as Record<string, unknown>,
  };
  const envelope = signEnvelope(statement, key);
  const stored = await store.put(Buffer.from(JSON.stringify(envelope, null, 2) + '\n'));
  return { ref: stored.ref, path: stored.path, keyId: keyId(rawPublicKey(key)), modelSha256: model?.sha256 };
}
