// `secmlops serve`: the guarded inference server for one released model. It starts only when the attestation opens
// with a trusted release key and re-checks; otherwise it exits with one line saying why.
import { loadPublicKey } from '../activities/keys.js';
import { ArtifactStore } from '../engine/io/artifact-store.js';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { loadAttestedModel } from '../serve/attested-model.js';
import { createServer } from '../serve/server.js';
import { homePaths } from '../worker/paths.js';
import { loadPolicyWithDigest } from './load-policy.js';
import { UsageError } from './usage-error.js';
import { MAX_ATTESTATION_BYTES } from './verify.js';

export interface ServeCommand {
  attestation: string;
  key?: string;
  policy?: string;
  artifacts?: string;
  host: string;
  port: number;
  maxBatch: number;
}

export async function serveCommand(o: ServeCommand): Promise<void> {
  const loaded = o.policy ? await loadPolicyWithDigest(o.policy) : undefined;
  const policy = loaded?.policy;
  const trustedKey = o.key ? await loadPublicKey(o.key) : policy?.release?.publicKey;
  if (!trustedKey)
    throw new UsageError('no trusted key: give --key PUB, or --policy F whose release.publicKey pins one');
  const store = new ArtifactStore(o.artifacts ?? homePaths().artifacts);
  const bytes = o.attestation.startsWith('sha256:')
    ? await store.get(o.attestation)
    : await readRegular(o.attestation, MAX_ATTESTATION_BYTES).catch((e: unknown) => {
        throw e instanceof RegularFileError ? new UsageError(`--attestation: ${e.message}`) : e;
      });
  let envelope: unknown;
  try {
    envelope = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UsageError(`--attestation: ${o.attestation} is not JSON`);
  }
  const attested = await loadAttestedModel({
    envelope,
    trustedKey,
    store,
    ...(loaded ? { policy: { digest: loaded.digest, modelSha256: policy?.artifacts.model?.sha256 } } : {}),
  });
  const server = await createServer({ attested, range: policy?.evaluate?.range, maxBatch: o.maxBatch });
  const url = await server.app.listen({ host: o.host, port: o.port });
  console.log(
    `serving sha256:${attested.sha256} (pipeline ${attested.pipeline}, policy ${attested.policyName}) on ${url}`,
  );
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
