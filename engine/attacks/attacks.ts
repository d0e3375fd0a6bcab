// White-box attacks (FGSM, PGD, DeepFool) and a forward-only one (Square), on one batch at a time.
// Every adversarial input stays within eps of the original and inside the declared valid range.
import type { LossKind } from '../autodiff/differentiate.js';
import { argmax } from '../metrics/predictions.js';
import type { Rng } from '../runtime/rng.js';
import type { GradientSource as AttackTarget } from './target.js';

export interface Range {
  min: number;
  max: number;
}

export interface Batch {
  x: Float32Array;
  labels: Uint8Array | number[];
  n: number;
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);

/** FGSM (Goodfellow et al. 2015): one signed-gradient step of size eps. */
export async function fgsm(t: AttackTarget, b: Batch, o: { eps: number; range: Range }): Promise<Float32Array> {
  const { grad } = await t.gradient(b.x, b.n, b.labels);
  return b.x.map((v, i) => clamp(v + o.eps * Math.sign(grad[i]), o.range.min, o.range.max));
}

export interface PgdOptions {
  eps: number;
  steps: number;
  /** Default 2.5·eps/steps (Madry et al.). */
  stepSize?: number;
  randomStart?: boolean;
  restarts?: number;
  norm?: 'linf' | 'l2';
  /** Targeted: move each input toward targets[i] instead of away from its label. */
  targets?: number[];
  /** The loss to ascend (default cross-entropy) and its targets input, if it has one. */
  loss?: LossKind;
  lossTargets?: ArrayLike<number>;
  /** Start from Gaussian noise of this standard deviation instead of uniformly in the ball (TRADES uses 0.001). */
  startNoise?: number;
  range: Range;
  rng: Rng;
  /** Each input's random start from its own generator, per restart (evaluation keys it by image index). */
  startRng?: (input: number, restart: number) => Rng;
}

/** PGD (Madry et al. 2018), Linf or L2, with random starts and restarts; per input it keeps the first success. */
export async function pgd(t: AttackTarget, b: Batch, o: PgdOptions): Promise<Float32Array> {
  const d = t.sampleSize;
  const norm = o.norm ?? 'linf';
  const alpha = o.stepSize ?? (2.5 * o.eps) / o.steps;
  const labels = o.targets ?? Array.from(b.labels);
  const sign = o.targets ? -1 : 1;
  const best = b.x.slice();
  const done = new Uint8Array(b.n);
  for (let r = 0; r < (o.restarts ?? 1); r++) {
    const adv = b.x.slice();
    if (o.startNoise !== undefined)
      for (let k = 0; k < adv.length; k++)
        adv[k] = clamp(adv[k] + o.startNoise * o.rng.normal(), o.range.min, o.range.max);
    else if (o.randomStart ?? true)
      randomStart(adv, b.x, b.n, d, o.eps, norm, o.range, (i) => o.startRng?.(i, r) ?? o.rng);
    for (let s = 0; s < o.steps; s++) {
      const { grad } = await t.gradient(adv, b.n, labels, o.loss, o.lossTargets);
      for (let i = 0; i < b.n; i++) {
        const off = i * d;
        const scale = norm === 'l2' ? alpha / (l2(grad, off, d) + 1e-12) : alpha;
        for (let k = off; k < off + d; k++) adv[k] += sign * scale * (norm === 'l2' ? grad[k] : Math.sign(grad[k]));
        project(adv, b.x, off, d, o.eps, norm, o.range);
      }
    }
    // With one start there is nothing to choose between (adversarial training relies on skipping this forward).
    if ((o.restarts ?? 1) === 1) return adv;
    const logits = await t.logits(adv, b.n);
    for (let i = 0; i < b.n; i++) {
      if (done[i]) continue;
      const pred = argmax(logits, i * t.classes, t.classes);
      const success = o.targets ? pred === o.targets[i] : pred !== b.labels[i];
      // Without a success, the last restart's point is kept (still a valid perturbation).
      best.set(adv.subarray(i * d, (i + 1) * d), i * d);
      if (success) done[i] = 1;
    }
  }
  return best;
}

function randomStart(
  adv: Float32Array,
  x: Float32Array,
  n: number,
  d: number,
  eps: number,
  norm: 'linf' | 'l2',
  range: Range,
  rngOf: (input: number) => Rng,
): void {
  for (let i = 0; i < n; i++) {
    const off = i * d;
    const rng = rngOf(i);
    if (norm === 'linf') {
      for (let k = off; k < off + d; k++) adv[k] = clamp(x[k] + (rng.next() * 2 - 1) * eps, range.min, range.max);
    } else {
      // A uniform direction, at a radius uniform in volume.
      const dir = Float32Array.from({ length: d }, () => rng.normal());
      const r = (eps * rng.next() ** (1 / d)) / (l2(dir, 0, d) + 1e-12);
      for (let k = 0; k < d; k++) adv[off + k] = clamp(x[off + k] + r * dir[k], range.min, range.max);
    }
  }
}

/** Back into the eps-ball around x and the valid range. */
function project(
  adv: Float32Array,
  x: Float32Array,
  off: number,
  d: number,
  eps: number,
  norm: 'linf' | 'l2',
  range: Range,
): void {
  if (norm === 'linf') {
    for (let k = off; k < off + d; k++) adv[k] = clamp(clamp(adv[k], x[k] - eps, x[k] + eps), range.min, range.max);
    return;
  }
  let sq = 0;
  for (let k = off; k < off + d; k++) sq += (adv[k] - x[k]) ** 2;
  const f = Math.sqrt(sq) > eps ? eps / Math.sqrt(sq) : 1;
  for (let k = off; k < off + d; k++) adv[k] = clamp(x[k] + (adv[k] - x[k]) * f, range.min, range.max);
}

export function l2(v: Float32Array, off: number, d: number): number {
  let s = 0;
  for (let k = off; k < off + d; k++) s += v[k] * v[k];
  return Math.sqrt(s);
}

/**
 * DeepFool (Moosavi-Dezfooli et al. 2016), multi-class: at each step the linearised nearest class boundary,
 * crossed by (1 + overshoot). Minimal L2 perturbations; no eps.
 */
export async function deepfool(
  t: AttackTarget,
  b: Batch,
  o: { overshoot?: number; maxIter?: number; range: Range },
): Promise<Float32Array> {
  const d = t.sampleSize;
  const c = t.classes;
  const overshoot = o.overshoot ?? 0.02;
  const start = await t.logits(b.x, b.n);
  const orig = Array.from({ length: b.n }, (_v, i) => argmax(start, i * c, c));
  const rTotal = new Float32Array(b.x.length);
  const adv = b.x.slice();
  const active = new Uint8Array(b.n).fill(1);
  for (let iter = 0; iter < (o.maxIter ?? 50); iter++) {
    const logits = await t.logits(adv, b.n);
    for (let i = 0; i < b.n; i++) if (argmax(logits, i * c, c) !== orig[i]) active[i] = 0;
    if (!active.some(Boolean)) break;
    const bestDist = new Float64Array(b.n).fill(Infinity);
    const bestStep = new Float32Array(b.x.length);
    for (let k = 0; k < c; k++) {
      const targets = orig.map((y) => (y === k ? (k + 1) % c : k));
      // ∇(z_k − z_orig) for every input at once.
      const { grad } = await t.gradient(adv, b.n, orig, 'target-margin', targets);
      for (let i = 0; i < b.n; i++) {
        if (!active[i] || orig[i] === k) continue;
        const f = logits[i * c + k] - logits[i * c + orig[i]];
        const wn = l2(grad, i * d, d) + 1e-8;
        const dist = Math.abs(f) / wn;
        if (dist < bestDist[i]) {
          bestDist[i] = dist;
          const scale = (Math.abs(f) + 1e-4) / (wn * wn);
          for (let j = 0; j < d; j++) bestStep[i * d + j] = scale * grad[i * d + j];
        }
      }
    }
    for (let i = 0; i < b.n; i++) {
      if (!active[i]) continue;
      for (let j = i * d; j < (i + 1) * d; j++) {
        rTotal[j] += bestStep[j];
        adv[j] = clamp(b.x[j] + (1 + overshoot) * rTotal[j], o.range.min, o.range.max);
      }
    }
  }
  return adv;
}

/**
 * Square Attack, Linf (Andriushchenko et al. 2020): random square updates accepted when they lower the margin
 * loss. Forward passes only, so it runs on models whose ops have no gradient rule.
 */
export async function square(
  t: AttackTarget,
  b: Batch,
  o: { eps: number; queries?: number; pInit?: number; range: Range; rng: Rng },
): Promise<Float32Array> {
  const [ch, h, w] = t.sampleShape.length === 3 ? t.sampleShape : [1, 1, t.sampleSize];
  const d = t.sampleSize;
  const c = t.classes;
  const queries = o.queries ?? 1000;
  const margin = (logits: Float32Array, i: number) => {
    const y = b.labels[i];
    let other = -Infinity;
    for (let j = 0; j < c; j++) if (j !== y) other = Math.max(other, logits[i * c + j]);
    return logits[i * c + y] - other;
  };
  // Start from vertical stripes of ±eps.
  const best = b.x.slice();
  for (let i = 0; i < b.n; i++) {
    for (let cc = 0; cc < ch; cc++) {
      for (let col = 0; col < w; col++) {
        const s = o.rng.next() < 0.5 ? -o.eps : o.eps;
        for (let row = 0; row < h; row++) {
          const k = i * d + cc * h * w + row * w + col;
          best[k] = clamp(b.x[k] + s, o.range.min, o.range.max);
        }
      }
    }
  }
  let logits = await t.logits(best, b.n);
  const bestMargin = Float64Array.from({ length: b.n }, (_v, i) => margin(logits, i));
  const cand = best.slice();
  for (let q = 1; q < queries && bestMargin.some((m) => m > 0); q++) {
    const p = squareFraction(o.pInit ?? 0.3, q, queries);
    const side = Math.max(1, Math.min(h - 1, Math.round(Math.sqrt(p * h * w))));
    cand.set(best);
    for (let i = 0; i < b.n; i++) {
      if (bestMargin[i] <= 0) continue;
      const r0 = o.rng.int(h - side + 1);
      const c0 = o.rng.int(w - side + 1);
      for (let cc = 0; cc < ch; cc++) {
        const s = o.rng.next() < 0.5 ? -o.eps : o.eps;
        for (let row = r0; row < r0 + side; row++) {
          for (let col = c0; col < c0 + side; col++) {
            const k = i * d + cc * h * w + row * w + col;
            cand[k] = clamp(b.x[k] + s, o.range.min, o.range.max);
          }
        }
      }
    }
    logits = await t.logits(cand, b.n);
    for (let i = 0; i < b.n; i++) {
      const m = margin(logits, i);
      if (bestMargin[i] > 0 && m < bestMargin[i]) {
        bestMargin[i] = m;
        best.set(cand.subarray(i * d, (i + 1) * d), i * d);
      }
    }
  }
  return best;
}

/** The paper's schedule for the fraction of pixels a square covers, rescaled to the query budget. */
function squareFraction(pInit: number, it: number, queries: number): number {
  const i = Math.floor((it / queries) * 10000);
  const halvings = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000].filter((k) => i > k).length;
  return pInit / 2 ** halvings;
}
