// `secmlops serve`: the guarded inference server for one released model. It starts only when the attestation opens
// with a trusted release key and re-checks; otherwise it exits with one line saying why.
import type { Client } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadPublicKey } from '../activities/keys.js';
import { readPair, sliceSet, toImageSet } from '../engine/data/fashion.js';
import { createSession, floatTensor } from '../engine/runtime/session.js';
import { own, type Policy } from '../policy/index.js';
import type { AttestedModel } from '../serve/attested-model.js';
import { calibrateDetector, type Detector } from '../serve/detector.js';
import { inputShape } from '../serve/served-model.js';
import { TelemetryWriter } from '../engine/monitor/telemetry.js';
import { followMonitor } from '../serve/follow-monitor.js';
import { monitorStatus } from '../client/incidents.js';
import { stageWorkflowId } from '../workflows/messages.js';
import { openArtifactStore } from '../engine/io/open-artifact-store.js';
import { RegularFileError, readRegular } from '../engine/io/regular-file.js';
import { loadAttestedModel } from '../serve/attested-model.js';
import { createServer } from '../serve/server.js';
import { homePaths } from '../worker/paths.js';
import { loadPolicyWithDigest } from './load-policy.js';
import { UsageError } from './usage-error.js';
import { MAX_ATTESTATION_BYTES } from './verify.js';

export interface ServeCommand {
  attestation?: string;
  key?: string;
  policy?: string;
  artifacts?: string;
  host: string;
  port: number;
  maxBatch: number;
  telemetry?: string;
  integrityEvery: number;
  monitor?: string;
  poll: number;
  client?: Client;
}

export async function serveCommand(o: ServeCommand): Promise<void> {
  if (o.monitor && !o.policy)
    throw new UsageError('--monitor needs --policy: a switch is checked against the policy’s channels and roles');
  const loaded = o.policy ? await loadPolicyWithDigest(o.policy) : undefined;
  const policy = loaded?.policy;
  const trustedKey = o.key ? await loadPublicKey(o.key) : policy?.release?.publicKey;
  if (!trustedKey)
    throw new UsageError('no trusted key: give --key PUB, or --policy F whose release.publicKey pins one');
  // A bucket (--artifacts s3://… or SECMLOPS_ARTIFACTS) is read through the local folder as its cache.
  const store = openArtifactStore({
    location: o.artifacts ?? process.env.SECMLOPS_ARTIFACTS,
    localDir: homePaths().artifacts,
  });
  // Restarted under a monitor, the server serves what the monitor serves (checked like any attestation).
  const chosen =
    !o.attestation && o.monitor && o.client ? (await monitorStatus(o.client, o.monitor)).serving : undefined;
  const ref = o.attestation ?? chosen?.attestation;
  if (!ref)
    throw new UsageError('give --attestation FILE|sha256:<digest>, or --monitor to serve what the monitor serves');
  const bytes = ref.startsWith('sha256:')
    ? await store.get(ref)
    : await readRegular(ref, MAX_ATTESTATION_BYTES).catch((e: unknown) => {
        throw e instanceof RegularFileError ? new UsageError(`--attestation: ${e.message}`) : e;
      });
  let envelope: unknown;
  try {
    envelope = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new UsageError(`--attestation: ${ref} is not JSON`);
  }
  const attested = await loadAttestedModel({
    envelope,
    trustedKey,
    store,
    ...(loaded ? { policy: { digest: loaded.digest, modelSha256: policy?.artifacts.model?.sha256 } } : {}),
  });
  const detector = policy?.monitor?.detector ? await calibrated(attested, policy) : undefined;
  const telemetry = policy?.monitor?.telemetry ?? { maxFileBytes: 16 * 1024 * 1024, files: 4, rawInputs: false };
  const server = await createServer({
    attested,
    attestation: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    range: policy?.evaluate?.range,
    maxBatch: o.maxBatch,
    telemetry: {
      // One file set per server process: several servers may share the folder the monitor reads.
      writer: new TelemetryWriter(o.telemetry ?? homePaths().telemetry, `serve-${process.pid}`, telemetry),
      rawInputs: telemetry.rawInputs,
    },
    ...(detector ? { detector } : {}),
    ...(o.integrityEvery > 0 ? { integrity: { store, everyMs: o.integrityEvery * 1000 } } : {}),
  });
  if (chosen?.decision) {
    server.served.chosenAt = Date.parse(chosen.decision.issuedAt);
    server.served.usedDecisions.add(chosen.decision.signature);
  }
  const url = await server.app.listen({ host: o.host, port: o.port });
  console.log(
    `serving sha256:${attested.sha256} (pipeline ${attested.pipeline}, policy ${attested.policyName}) on ${url}`,
  );
  const unfollow =
    o.monitor && o.client && loaded
      ? followMonitor({
          client: o.client,
          monitorId: stageWorkflowId(o.monitor, 'monitor'),
          served: server.served,
          store,
          policy: loaded.policy,
          policyDigest: loaded.digest,
          trustedKey,
          everyMs: o.poll * 1000,
          log: (line) => console.log(line),
        })
      : undefined;
  const stop = () => {
    unfollow?.();
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * The detector's threshold from the last `count` images of the policy's calibration split, read with the digests
 * the policy pins (a swapped file is refused), scored by the attested model.
 */
async function calibrated(attested: AttestedModel, policy: Policy): Promise<Detector> {
  const c = policy.monitor!.detector!;
  const dataset = policy.artifacts.dataset!;
  const split = own(dataset.splits, c.calibration.split)!;
  const pin = (f: string) => dataset.files.find((x) => x.path === f)?.sha256;
  const pair = await readPair(
    {
      images: join(dataset.root, split.images),
      labels: join(dataset.root, split.labels),
      imagesSha256: pin(split.images),
      labelsSha256: pin(split.labels),
      ...(dataset.maxFileBytes ? { maxBytes: dataset.maxFileBytes } : {}),
    },
    dataset.classes,
  );
  const all = toImageSet(pair);
  const held = sliceSet(all, Math.max(0, all.count - c.calibration.count), all.count);
  const session = await createSession(attested.model);
  const { name } = inputShape(attested);
  const run = async (x: Float32Array, n: number) => {
    const out = await session.run({ [name]: floatTensor(x, [n, ...held.shape]) });
    return out[session.outputNames[0]].data as Float32Array;
  };
  try {
    const range = policy.evaluate?.range ?? [0, 1];
    const det = await calibrateDetector(run, { ...held, shape: held.shape }, { ...c, config: c, range });
    console.log(
      `detector: feature squeezing (${c.bits} bits${c.median > 1 ? `, ${c.median}×${c.median} median` : ''}), ` +
        `threshold ${det.threshold.toPrecision(4)} for ${100 * c.fpr}% false positives on ${held.count} clean images`,
    );
    return det;
  } finally {
    await session.release();
  }
}
