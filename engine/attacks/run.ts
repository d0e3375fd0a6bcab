// Runs one attack over a labeled set in batches and returns per-image results for the metrics.
import { ATTACK_NAMES, type AttackConfig, type AttackKind } from '../../policy/types.js';
import type { ImageSet } from '../data/fashion.js';
import type { SampleResult } from '../metrics/metrics.js';
import { keyedRng } from '../runtime/rng.js';
import { argmax } from '../metrics/predictions.js';
import { deepfool, fgsm, pgd, square, type Range } from './attacks.js';
import type { GradientSource } from './target.js';

export const ATTACKS = ATTACK_NAMES;
export type AttackName = AttackKind;

/** An attack and its settings: the policy's attack entry without its id. eps is unused by DeepFool. */
export type AttackSpec = Omit<AttackConfig, 'id'>;

export interface RunOptions {
  range: Range;
  seed?: number;
  batch?: number;
  /**
   * The index of data's first image in the whole set: random draws are keyed by image index (PGD's starts per image,
   * Square Attack's per batch, so a shard must start on a batch boundary to draw what the whole run draws).
   */
  offset?: number;
  onProgress?: (done: number, total: number) => void;
  /** Each batch's adversarial images, in order, before the next batch is attacked. */
  onAdversarial?: (adv: Float32Array, n: number) => Promise<void>;
}

export function describeSpec(s: AttackSpec): string {
  if (s.attack === 'deepfool') return 'deepfool';
  const steps = s.attack === 'pgd' ? `-${s.steps ?? 20}` : '';
  return `${s.attack}${steps}${s.norm === 'l2' ? '-l2' : ''} eps=${s.eps}`;
}

export async function runAttack(
  t: GradientSource,
  data: ImageSet,
  spec: AttackSpec,
  o: RunOptions,
): Promise<SampleResult[]> {
  if (spec.attack !== 'deepfool' && !(typeof spec.eps === 'number' && spec.eps >= 0))
    throw new Error(`${spec.attack} needs eps ≥ 0`);
  const seed = o.seed ?? 1;
  const offset = o.offset ?? 0;
  const d = t.sampleSize;
  // Both sizes divide evaluate-shards.ts's SHARD_ALIGNMENT, so a shard's batches are the whole run's batches (a
  // gradient is scaled by its batch's size, and DeepFool's steps feel the rounding).
  const batch = o.batch ?? (spec.attack === 'deepfool' ? 128 : 256);
  const results: SampleResult[] = [];
  for (let s = 0; s < data.count; s += batch) {
    const n = Math.min(batch, data.count - s);
    const b = { x: data.images.slice(s * d, (s + n) * d), labels: data.labels.subarray(s, s + n), n };
    const eps = spec.eps ?? 0;
    const adv =
      spec.attack === 'fgsm'
        ? await fgsm(t, b, { eps, range: o.range })
        : spec.attack === 'pgd'
          ? await pgd(t, b, {
              eps,
              steps: spec.steps ?? 20,
              stepSize: spec.stepSize,
              restarts: spec.restarts,
              randomStart: spec.randomStart,
              norm: spec.norm,
              range: o.range,
              rng: keyedRng(seed, offset + s, -1),
              startRng: (i, restart) => keyedRng(seed, offset + s + i, restart),
            })
          : spec.attack === 'deepfool'
            ? await deepfool(t, b, { overshoot: spec.overshoot, maxIter: spec.maxIter, range: o.range })
            : await square(t, b, { eps, queries: spec.queries, range: o.range, rng: keyedRng(seed, offset + s, -1) });
    const [clean, attacked] = [await t.logits(b.x, n), await t.logits(adv, n)];
    await o.onAdversarial?.(adv, n);
    for (let i = 0; i < n; i++) {
      let linf = 0;
      let sq = 0;
      for (let k = i * d; k < (i + 1) * d; k++) {
        const diff = Math.abs(adv[k] - b.x[k]);
        linf = Math.max(linf, diff);
        sq += diff * diff;
      }
      results.push({
        label: b.labels[i],
        clean: argmax(clean, i * t.classes, t.classes),
        adversarial: argmax(attacked, i * t.classes, t.classes),
        linf,
        l2: Math.sqrt(sq),
      });
    }
    o.onProgress?.(Math.min(data.count, s + n), data.count);
  }
  return results;
}
