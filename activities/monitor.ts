// The monitor stage's activities: judge one window of the guarded server's telemetry (drift, detector flags) and
// re-hash the served model file; check a rollback target before the monitor points the server at it.
import { ApplicationFailure } from '@temporalio/common';
import { hashRegular } from '../engine/io/regular-file.js';
import { modelInputShape, parseModel } from '../engine/onnx/model.js';
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
  /** Telemetry lines that were not records, files that could not be read, records of other models. */
  malformed: number;
  unreadable: number;
  otherModels: number;
  /** Why the window could not be measured at all (the workflow records it; repeated, it is an incident). */
  error?: string;
  /** The served model file, hashed again now. */
  integrity: { ok: boolean; detail?: string };
}

const MAX_MODEL_BYTES = 4 * 1024 ** 3;
const SETTLE_MS = 500;

export async function monitorWindow(
  store: ArtifactStore,
  telemetryDir: string,
  req: WindowRequest,
): Promise<WindowMeasurement> {
  // The server writes its telemetry in batches every 200 ms: the window's last records settle before it is read.
  const settle = req.until + SETTLE_MS - Date.now();
  if (settle > 0) await new Promise((r) => setTimeout(r, settle));
  const { records, ...counts } = await readWindow(telemetryDir, {
    model: req.modelSha256,
    since: req.since,
    until: req.until,
    maxFileBytes: req.maxFileBytes,
  });
  const scores = scoreWindow(req.reference, records, req.thresholds);
  const integrity = await integrityOf(store, req.modelSha256);
  return { since: req.since, until: req.until, ...counts, ...scores, integrity };
}

/** The served model file's bytes against the attested digest: any difference, or no readable file, fails. */
async function integrityOf(store: ArtifactStore, sha256: string): Promise<WindowMeasurement['integrity']> {
  let path = sha256;
  try {
    path = await store.localPath(sha256);
    // Streamed: a file swapped for a huge (or sparse) one is hashed in constant memory, not read whole.
    const { sha256: actual, bytes } = await hashRegular(path);
    if (bytes > MAX_MODEL_BYTES) return { ok: false, detail: `the served model file ${path} grew to ${bytes} bytes` };
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
  /** Its input dimensions, when the monitor knows them: the target must take the same. */
  shape?: string;
}

/**
 * A rollback target must be a release the guarded server would load: the envelope opens with this worker's release
 * key and re-checks, under the same policy, and its model's bytes are intact in the store.
 */
export async function checkRollback(
  store: ArtifactStore,
  releaseKeyPath: string,
  req: RollbackRequest,
): Promise<{ modelSha256: string; pipeline: string; shape: string }> {
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
  let shape: string;
  try {
    shape = await servedShape(store, release.sha256);
  } catch (e) {
    throw refuse(`its model is not intact or not servable: ${(e as Error).message}`);
  }
  // The server refuses a model with other inputs than the one it serves; the monitor must not point at it.
  if (req.shape && shape !== req.shape) throw refuse(`its model takes ${shape} inputs, the served one ${req.shape}`);
  return { modelSha256: release.sha256, pipeline: release.predicate.pipeline, shape };
}

/** One example's input dimensions (e.g. 1×28×28) of a model in the store, read through its digest check. */
export async function servedShape(store: ArtifactStore, sha256: string): Promise<string> {
  return modelInputShape(parseModel(await store.get(`sha256:${sha256}`), `sha256:${sha256}`)).shape.join('×');
}
