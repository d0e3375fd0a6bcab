// The only way a model reaches the guarded server: a release attestation that opens with a key the operator trusts
// and re-checks (policy/attestation.ts, the same check `secmlops verify` runs), naming the model's digest; the model's
// bytes then come from the artifact store by that digest and are hashed again before a session is built.
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { MODEL_LIMITS, parseModel } from '../engine/onnx/model.js';
import type { ModelProto } from '../engine/onnx/proto.js';
import { PREDICATE_TYPE, checkAttestation, openEnvelope, type ReleasePredicate } from '../policy/attestation.js';

export interface AttestedModel {
  model: ModelProto;
  sha256: string;
  /** The pipeline that released it and the policy it ran under. */
  pipeline: string;
  policyName: string;
  predicate: ReleasePredicate;
}

/** Why a model is not served: one line, for the operator starting the server. */
export class NotAttested extends Error {
  constructor(reason: string) {
    super(`refusing to serve: ${reason}`);
    this.name = 'NotAttested';
  }
}

export async function loadAttestedModel(o: {
  envelope: unknown;
  trustedKey: string;
  store: Pick<ArtifactStore, 'get'>;
  /**
   * The operator's policy: the release must have run under exactly it (its digest), and a model it pins must be
   * the attested one. Without it any release the key ever signed loads, an older model included.
   */
  policy?: { digest: string; modelSha256?: string };
}): Promise<AttestedModel> {
  let statement;
  try {
    statement = openEnvelope(o.envelope, o.trustedKey);
  } catch (e) {
    throw new NotAttested(`the attestation does not open: ${(e as Error).message}`);
  }
  if (statement.predicateType !== PREDICATE_TYPE)
    throw new NotAttested(`the attestation's predicate type ${statement.predicateType} is not ${PREDICATE_TYPE}`);
  if (!Array.isArray(statement.subject)) throw new NotAttested('the attestation names no subjects');
  const subjects = statement.subject.map((s) => ({ name: String(s?.name), sha256: String(s?.digest?.sha256) }));
  const predicate = statement.predicate as unknown as ReleasePredicate;
  let checked;
  try {
    checked = checkAttestation(predicate, subjects);
  } catch (e) {
    throw new NotAttested(`the attestation cannot be checked: ${(e as Error).message}`);
  }
  if (checked.problems.length)
    throw new NotAttested(
      `the attestation does not check: ${checked.problems[0]}` +
        (checked.problems.length > 1 ? ` (and ${checked.problems.length - 1} more)` : ''),
    );
  if (checked.notChecked.length)
    throw new NotAttested(`the attestation leaves something unchecked: ${checked.notChecked.join('; ')}`);
  const sha256 = subjects.find((s) => s.name === 'model')?.sha256;
  if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256)) throw new NotAttested('the attestation names no model');
  if (o.policy && predicate.policyDigest !== o.policy.digest)
    throw new NotAttested(
      `the release ran under policy ${String(predicate.policyDigest).slice(0, 12)}…, not the given policy ` +
        `(${o.policy.digest.slice(0, 12)}…)`,
    );
  if (o.policy?.modelSha256 && o.policy.modelSha256 !== sha256)
    throw new NotAttested(`the attested model sha256:${sha256} is not the model the policy pins`);
  let bytes: Buffer;
  try {
    bytes = await o.store.get(`sha256:${sha256}`);
  } catch (e) {
    throw new NotAttested(`model sha256:${sha256}: ${(e as Error).message}`);
  }
  let model: ModelProto;
  try {
    model = parseModel(bytes, `sha256:${sha256}`, { maxBytes: MODEL_LIMITS.maxBytes });
  } catch (e) {
    throw new NotAttested((e as Error).message);
  }
  return { model, sha256, pipeline: predicate.pipeline, policyName: predicate.policyName, predicate };
}
