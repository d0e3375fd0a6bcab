// CutMix (Yun et al., ICCV 2019): a box cut from a partner image in the batch replaces the same box of each image,
// and the label becomes the two one-hot labels mixed by the share of pixels each image keeps. Follows the authors'
// reference code: λ ~ Beta(α, α), a box of side √(1 − λ) of the image centred uniformly and clipped at the border,
// and λ recomputed from the clipped box's area.
import { InputError } from '../input-error.js';
import type { Rng } from '../runtime/rng.js';

export interface CutMixConfig {
  /** Beta(α, α) draws the kept share; α = 1 is uniform. */
  alpha: number;
  /** The share of batches mixed (the paper's CIFAR recipe: 0.5). */
  prob: number;
}

/** Rows [y0, y1) and columns [x0, x1) of an h × w image. */
export interface Box {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

export function checkCutMix(c: CutMixConfig, where = 'cutmix'): void {
  if (!(c.alpha > 0) || !Number.isFinite(c.alpha))
    throw new InputError(`${where}: alpha must be above 0, got ${c.alpha}`);
  if (!(c.prob > 0 && c.prob <= 1)) throw new InputError(`${where}: prob must be in (0, 1], got ${c.prob}`);
}

/** The box for kept share λ: side √(1 − λ) of each dimension, centred at (cy, cx), clipped to the image. */
export function cutBox(h: number, w: number, lambda: number, cy: number, cx: number): Box {
  const ratio = Math.sqrt(1 - lambda);
  const ch = Math.floor(h * ratio);
  const cw = Math.floor(w * ratio);
  const clip = (v: number, hi: number) => Math.min(hi, Math.max(0, v));
  return {
    y0: clip(cy - Math.floor(ch / 2), h),
    y1: clip(cy + Math.floor(ch / 2), h),
    x0: clip(cx - Math.floor(cw / 2), w),
    x1: clip(cx + Math.floor(cw / 2), w),
  };
}

export interface Mixed {
  x: Float32Array;
  /** Soft labels [n, classes]: each row the two one-hot labels weighted by the pixels each image keeps. */
  targets: Float32Array;
  /** The kept share after clipping, and the partner of each row (undefined for a batch left unmixed). */
  lambda: number;
  partner?: Uint32Array;
  box?: Box;
}

/**
 * Mixes a batch of n images of shape [c, h, w] (one box and one λ for the batch, as the reference code does),
 * or, with probability 1 − prob, leaves it as it is with one-hot targets.
 */
export function cutmix(
  x: Float32Array,
  labels: ArrayLike<number>,
  n: number,
  shape: readonly number[],
  classes: number,
  c: CutMixConfig,
  rng: Rng,
): Mixed {
  const [ch, h, w] = shape.length === 3 ? shape : [1, shape[0], shape[1]];
  const d = ch * h * w;
  const targets = new Float32Array(n * classes);
  const oneHot = () => {
    for (let i = 0; i < n; i++) targets[i * classes + labels[i]] = 1;
  };
  if (rng.next() >= c.prob) {
    oneHot();
    return { x, targets, lambda: 1 };
  }
  const drawn = rng.beta(c.alpha, c.alpha);
  const partner = rng.shuffle(n);
  const box = cutBox(h, w, drawn, rng.int(h), rng.int(w));
  const mixed = x.slice();
  for (let i = 0; i < n; i++) {
    const j = partner[i];
    for (let k = 0; k < ch; k++)
      for (let y = box.y0; y < box.y1; y++) {
        const row = i * d + k * h * w + y * w;
        const from = j * d + k * h * w + y * w;
        mixed.set(x.subarray(from + box.x0, from + box.x1), row + box.x0);
      }
  }
  const lambda = 1 - ((box.y1 - box.y0) * (box.x1 - box.x0)) / (h * w);
  for (let i = 0; i < n; i++) {
    targets[i * classes + labels[i]] += lambda;
    targets[i * classes + labels[partner[i]]] += 1 - lambda;
  }
  return { x: mixed, targets, lambda, partner, box };
}
