// Feature squeezing (Xu, Evans, Qi, NDSS 2018): an adversarial input tends to move the model's prediction far more
// when its features are squeezed (fewer bits per pixel, a median filter) than a clean input does, so the L1 distance
// between the softmax of the input and of its squeezed copies is a detector score. Both squeezers follow the paper's
// reference code (EvadeML-Zoo) so thresholds and rates are comparable with its published ones.
import { InputError } from '../input-error.js';

export interface SqueezeConfig {
  /**
   * Bit-depth reduction to this many bits (1–8). 8 on 8-bit images leaves clean inputs unchanged, so any input off
   * the 8-bit grid scores above 0 and is flagged: a "detector" an attacker defeats by rounding to whole grey levels.
   */
  bits: number;
  /** Median smoothing window (2 = the paper's 2×2; 1 disables). */
  median: number;
}

/**
 * For Fashion-MNIST, measured on test images 0–999 at FPR 5% (bench/detect.bench.ts repeats three of the settings);
 * PGD-20 eps 0.1 detection on the example model / a PGD-3 trained small CNN: 2 bits alone 37% / 27%. The paper's
 * MNIST setting (1 bit + 2×2 median) gives 43% / 8%: unlike MNIST's near-binary strokes, Fashion-MNIST's grey
 * textures change class under one bit often enough that the 95th percentile of clean scores is 1.93 of a possible 2.
 * 3–6 bits detect at most 2% on the example model (its PGD inputs are so confident that squeezing leaves their
 * softmax unchanged); 3–4 bits detect 59–72% on the trained one. Adding a 2×2 or 3×3 median never raised PGD
 * detection: its clean scores are higher, and the max over squeezers then sets the threshold by them.
 */
export const FASHION_SQUEEZE: SqueezeConfig = { bits: 2, median: 1 };

/** Logits for a batch: x is n flattened inputs of shape `shape` (e.g. [1, 28, 28]); returns n × classes logits. */
export type RunLogits = (x: Float32Array, n: number) => Promise<Float32Array>;

function checkRange(range: [number, number]): void {
  const [lo, hi] = range;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(lo < hi))
    throw new InputError(`range must be two finite numbers [min, max] with min < max, got [${lo}, ${hi}]`);
}

function checkInt(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) throw new InputError(`${name} must be an integer from ${lo} to ${hi}`);
}

/** numpy's rint, which the reference code uses: halves go to the even neighbour (0.5 → 0, 1.5 → 2). */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Each value to the nearest of 2^bits evenly spaced levels over `range`: rint(u · (2^bits − 1)) / (2^bits − 1). */
export function reduceBitDepth(x: Float32Array, bits: number, range: [number, number]): Float32Array {
  checkInt('bits', bits, 1, 8);
  checkRange(range);
  const [lo, hi] = range;
  const levels = 2 ** bits - 1;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    // Clamped so an input slightly outside the range squeezes to an end level instead of a level that is not one.
    const u = Math.min(1, Math.max(0, (x[i] - lo) / (hi - lo)));
    out[i] = lo + (rint(u * levels) / levels) * (hi - lo);
  }
  return out;
}

/** scipy.ndimage's 'reflect' mode: (d c b a | a b c d | d c b a), the edge pixel repeated; any distance folds. */
function reflect(i: number, n: number): number {
  const m = ((i % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - 1 - m;
}

/**
 * scipy.ndimage.median_filter(x, size=(1, size, size, 1), mode='reflect') over the last two axes of `shape` (the
 * leading ones are channels), for each of the x.length / prod(shape) images. As in scipy (origin 0), the window at
 * (i, j) starts size//2 before it, so a 2×2 window covers offsets −1 and 0 on each axis; the result is the element of
 * rank size²//2 in the sorted window, which for an even window is the upper of the two middle values.
 */
export function medianSmooth(x: Float32Array, shape: number[], size: number): Float32Array {
  checkInt('median', size, 1, 5);
  if (shape.length < 2 || shape.some((d) => !Number.isInteger(d) || d < 1))
    throw new InputError(`shape must be two or more positive integers (…, height, width), got [${shape.join(', ')}]`);
  const [h, w] = shape.slice(-2);
  const plane = h * w;
  if (x.length % plane !== 0) throw new InputError(`${x.length} values do not split into ${h}×${w} planes`);
  if (size === 1) return x.slice();
  const out = new Float32Array(x.length);
  const before = size >> 1;
  const rank = (size * size) >> 1;
  const win = new Float32Array(size * size);
  // Reflected indices precomputed per axis: the window position only depends on the row or column.
  const rows = Int32Array.from({ length: h * size }, (_, k) => reflect(Math.floor(k / size) - before + (k % size), h));
  const cols = Int32Array.from({ length: w * size }, (_, k) => reflect(Math.floor(k / size) - before + (k % size), w));
  for (let p = 0; p < x.length; p += plane) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let m = 0;
        for (let a = 0; a < size; a++) {
          const row = p + rows[i * size + a] * w;
          for (let b = 0; b < size; b++) {
            // Insertion sort while filling: at most 25 elements, cheaper than sort() and no allocation.
            const v = x[row + cols[j * size + b]];
            let k = m++;
            while (k > 0 && win[k - 1] > v) win[k] = win[--k];
            win[k] = v;
          }
        }
        out[p + i * w + j] = win[rank];
      }
    }
  }
  return out;
}

function softmaxInto(logits: Float32Array, off: number, k: number, out: Float64Array): void {
  let max = -Infinity;
  for (let c = 0; c < k; c++) max = Math.max(max, logits[off + c]);
  let sum = 0;
  for (let c = 0; c < k; c++) sum += out[c] = Math.exp(logits[off + c] - max);
  for (let c = 0; c < k; c++) out[c] /= sum;
}

/** The detector score per input: max over squeezers of L1(softmax(x), softmax(squeezed x)). One run over 3n inputs. */
export async function squeezeScores(
  run: RunLogits,
  x: Float32Array,
  n: number,
  shape: number[],
  c: SqueezeConfig,
  range: [number, number],
): Promise<Float32Array> {
  checkInt('bits', c.bits, 1, 8);
  checkInt('median', c.median, 1, 5);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`n must be a positive integer, got ${n}`);
  const d = shape.reduce((a, b) => a * b, 1);
  if (d * n !== x.length)
    throw new InputError(`shape [${shape.join(', ')}] holds ${d} values: ${n} inputs need ${d * n}, got ${x.length}`);
  // One batch for all views: one run's fixed cost instead of three, and the batch ORT is fastest on.
  const views = [x, reduceBitDepth(x, c.bits, range)];
  if (c.median > 1) views.push(medianSmooth(x, shape, c.median));
  const all = new Float32Array(views.length * x.length);
  views.forEach((v, k) => all.set(v, k * x.length));
  const logits = await run(all, views.length * n);
  const classes = logits.length / (views.length * n);
  if (!Number.isInteger(classes) || classes < 1)
    throw new InputError(`the model returned ${logits.length} logits for ${views.length * n} inputs`);
  const p = new Float64Array(classes);
  const q = new Float64Array(classes);
  const scores = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    softmaxInto(logits, i * classes, classes, p);
    let score = 0;
    for (let v = 1; v < views.length; v++) {
      softmaxInto(logits, (v * n + i) * classes, classes, q);
      let l1 = 0;
      for (let k = 0; k < classes; k++) l1 += Math.abs(p[k] - q[k]);
      score = Math.max(score, l1);
    }
    scores[i] = score;
  }
  return scores;
}

/**
 * The threshold giving at most `fpr` false positives on these clean scores (flag when score > threshold): the
 * smallest t with #{s > t} ≤ floor(fpr · n), which is the (floor(fpr · n) + 1)-th largest score. Ties at t are not
 * flagged, so the realised rate can be below fpr; any smaller t would flag more than fpr of the clean set.
 */
export function calibrateThreshold(cleanScores: Float32Array, fpr: number): number {
  if (!(fpr > 0 && fpr < 1)) throw new InputError(`fpr must be in (0, 1), got ${fpr}`);
  if (cleanScores.length === 0) throw new InputError('no clean scores to calibrate on');
  if (cleanScores.some((s) => Number.isNaN(s))) throw new InputError('clean scores contain NaN');
  const sorted = Float64Array.from(cleanScores).sort();
  // The tolerance keeps products such as 0.29 · 100 = 28.999999999999996 from losing an allowed false positive.
  const allowed = Math.floor(fpr * sorted.length + 1e-9);
  return sorted[sorted.length - 1 - allowed];
}
