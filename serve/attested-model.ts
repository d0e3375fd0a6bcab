// The only way a model reaches the guarded server: a release attestation that opens with a key the operator trusts
// and re-checks (policy/attestation.ts, the same check `secmlops verify` runs), naming the model's digest; the model's
// bytes then come from the artifact store by that digest and are hashed again before a session is built.
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { MODEL_LIMITS, parseModel } from '../engine/onnx/model.js';
import type { ModelProto } from '../engine/onnx/proto.js';
import { NotAttested, attestedRelease, type ReleasePredicate } from '../policy/attestation.js';

export interface AttestedModel {
  model: ModelProto;
  sha256: string;
  /** The pipeline that released it and the policy it ran under. */
  pipeline: string;
  policyName: string;
  predicate: ReleasePredicate;
}

export { NotAttested };

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
  const { sha256, predicate } = attestedRelease(o.envelope, o.trustedKey, o.policy);
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
