// The monitor stage's activities: judge one window of the guarded server's telemetry (drift, detector flags) and
// re-hash the served model file; check a rollback target before the monitor points the server at it.
import { ApplicationFailure } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { readRegular } from '../engine/io/regular-file.js';
import type { ArtifactStore } from '../engine/io/artifact-store.js';
import { readWindow } from '../engine/monitor/telemetry.js';
import { scoreWindow, type WindowScores, type WindowThresholds } from '../engine/monitor/window.js';
import { attestedRelease } from '../policy/attestation.js';
import type { DriftReference } from '../policy/index.js';
import { loadPrivateKey, rawPublicKey } from './keys.js';

export interface WindowRequest {
  /** The model served now (hex SHA-256). */
  modelSha256: string;
  /** The window, in ms since the epoch: [since, until). */
  since: number;
  until: number;
  reference: DriftReference;
  thresholds: WindowThresholds;
  maxFileBytes: number;
}

export interface WindowMeasurement extends WindowScores {
  since: number;
  until: number;
  /** Telemetry lines that were not records. */
  malformed: number;
  /** The served model file, hashed again now. */
  integrity: { ok: boolean; detail?: string };
}

const MAX_MODEL_BYTES = 4 * 1024 ** 3;

export async function monitorWindow(
  store: ArtifactStore,
  telemetryDir: string,
  req: WindowRequest,
): Promise<WindowMeasurement> {
  const { records, malformed } = await readWindow(telemetryDir, {
    model: req.modelSha256,
    since: req.since,
    until: req.until,
    maxFileBytes: req.maxFileBytes,
  });
  const scores = scoreWindow(req.reference, records, req.thresholds);
  return {
    since: req.since,
    until: req.until,
    malformed,
    ...scores,
    integrity: await integrityOf(store, req.modelSha256),
  };
}

/** The served model file's bytes against the attested digest: any difference, or no readable file, fails. */
async function integrityOf(store: ArtifactStore, sha256: string): Promise<WindowMeasurement['integrity']> {
  const path = store.pathOf(sha256);
  try {
    const actual = createHash('sha256')
      .update(await readRegular(path, MAX_MODEL_BYTES))
      .digest('hex');
    if (actual === sha256) return { ok: true };
    return { ok: false, detail: `the served model file ${path} now hashes to ${actual}, not the attested ${sha256}` };
  } catch (e) {
    return { ok: false, detail: `the served model file cannot be read: ${(e as Error).message}` };
  }
}

export interface RollbackRequest {
  /** The earlier release's attestation in the artifact store. */
  attestation: string;
  policyDigest: string;
  /** The model the policy pins, if any. */
  modelPin?: string;
  /** The model served now: rolling back to it changes nothing. */
  current: string;
}

/**
 * A rollback target must be a release the guarded server would load: the envelope opens with this worker's release
 * key and re-checks, under the same policy, and its model's bytes are intact in the store.
 */
export async function checkRollback(
  store: ArtifactStore,
  releaseKeyPath: string,
  req: RollbackRequest,
): Promise<{ modelSha256: string; pipeline: string }> {
  const refuse = (why: string) =>
    ApplicationFailure.nonRetryable(`cannot roll back to ${req.attestation}: ${why}`, 'BadRollback');
  let envelope: unknown;
  try {
    envelope = JSON.parse((await store.get(req.attestation)).toString('utf8'));
  } catch (e) {
    throw refuse((e as Error).message);
  }
  const trusted = rawPublicKey(await loadPrivateKey(releaseKeyPath));
  let release;
  try {
    release = attestedRelease(envelope, trusted, { digest: req.policyDigest, modelSha256: req.modelPin });
  } catch (e) {
    throw refuse((e as Error).message);
  }
  if (release.sha256 === req.current) throw refuse('it attests the model served now');
  await store.get(`sha256:${release.sha256}`).catch((e: Error) => {
    throw refuse(`its model is not intact in the store: ${e.message}`);
  });
  return { modelSha256: release.sha256, pipeline: release.predicate.pipeline };
}
