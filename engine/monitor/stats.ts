// What the guarded server records about each input and output, and what the evaluate stage records as the monitor's
// reference: the same summary computed by the same function on both sides, so drift compares like with like.

export interface InputSummary {
  /** Mean and standard deviation of the input's values (brightness and contrast, for images). */
  mean: number;
  std: number;
  /** The predicted class and its softmax probability. */
  cls: number;
  conf: number;
}

import type { DriftReference } from '../../policy/evidence.js';

export type { DriftReference };

/** Reference lists are rounded to this many significant digits: enough for quantiles, small in evidence. */
const DIGITS = 6;

export function inputMoments(x: Float32Array, off: number, d: number): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < d; i++) sum += x[off + i];
  const mean = sum / d;
  let sq = 0;
  for (let i = 0; i < d; i++) sq += (x[off + i] - mean) ** 2;
  return { mean, std: Math.sqrt(sq / d) };
}

/** Softmax of one row of logits: the argmax and its probability, computed stably. */
export function topClass(logits: Float32Array, off: number, classes: number): { cls: number; conf: number } {
  let cls = 0;
  for (let k = 1; k < classes; k++) if (logits[off + k] > logits[off + cls]) cls = k;
  let sum = 0;
  for (let k = 0; k < classes; k++) sum += Math.exp(logits[off + k] - logits[off + cls]);
  return { cls, conf: 1 / sum };
}

/** Summaries of n inputs (d values each) and their logits. */
export function summarise(x: Float32Array, logits: Float32Array, n: number): InputSummary[] {
  const d = x.length / n;
  const classes = logits.length / n;
  const out: InputSummary[] = [];
  for (let i = 0; i < n; i++) out.push({ ...inputMoments(x, i * d, d), ...topClass(logits, i * classes, classes) });
  return out;
}

export function referenceOf(s: InputSummary[], classes: number): DriftReference {
  const sorted = (f: (v: InputSummary) => number) => s.map((v) => +f(v).toPrecision(DIGITS)).sort((a, b) => a - b);
  const classCounts = new Array<number>(classes).fill(0);
  for (const v of s) classCounts[v.cls]++;
  return {
    inputs: s.length,
    mean: sorted((v) => v.mean),
    std: sorted((v) => v.std),
    conf: sorted((v) => v.conf),
    classCounts,
  };
}
