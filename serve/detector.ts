// Adversarial-input detection on the guarded server: feature squeezing (engine/detect/squeeze.ts) with its
// threshold calibrated at start on clean held-out images at the policy's false-positive rate.
import { calibrateThreshold, squeezeScores, type RunLogits, type SqueezeConfig } from '../engine/detect/squeeze.js';

export interface Detector {
  config: SqueezeConfig;
  fpr: number;
  threshold: number;
  action: 'flag' | 'refuse';
  range: [number, number];
  /** How many clean images the threshold was calibrated on, and (kept) the images, to calibrate a new model. */
  calibratedOn: number;
  calibration?: { images: Float32Array; count: number; shape: number[] };
}

const CHUNK = 256;

export async function calibrateDetector(
  run: RunLogits,
  clean: { images: Float32Array; count: number; shape: number[] },
  o: { config: SqueezeConfig; fpr: number; action: 'flag' | 'refuse'; range: [number, number] },
): Promise<Detector> {
  const d = clean.images.length / clean.count;
  const scores = new Float32Array(clean.count);
  for (let i = 0; i < clean.count; i += CHUNK) {
    const n = Math.min(CHUNK, clean.count - i);
    const x = clean.images.subarray(i * d, (i + n) * d);
    scores.set(await squeezeScores(run, x, n, clean.shape, o.config, o.range), i);
  }
  return {
    config: o.config,
    fpr: o.fpr,
    action: o.action,
    range: o.range,
    threshold: calibrateThreshold(scores, o.fpr),
    calibratedOn: clean.count,
    calibration: { images: clean.images, count: clean.count, shape: clean.shape },
  };
}

/** Scores and flags for n inputs. */
export async function detect(
  det: Detector,
  run: RunLogits,
  x: Float32Array,
  n: number,
  shape: number[],
): Promise<{ scores: Float32Array; flags: boolean[] }> {
  const scores = await squeezeScores(run, x, n, shape, det.config, det.range);
  return { scores, flags: Array.from(scores, (s) => s > det.threshold) };
}
