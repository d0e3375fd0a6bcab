// Membership inference against a trained model, from its per-example losses: members of the training set tend to
// have lower loss than images it never saw. Two attacks, neither needing shadow models:
// - loss threshold (Yeom et al. 2018): the score is −loss, one threshold for every image;
// - class-calibrated: −(loss − the median loss of the image's class over held-out calibration images), so that a
//   class the model finds hard does not look like a class of non-members.
// Each is measured on equal numbers of members and non-members by AUC and by the membership advantage
// max over thresholds of (true-positive rate − false-positive rate).
import type { ImageSet } from '../data/fashion.js';
import { InputError } from '../input-error.js';

export type Logits = (x: Float32Array, n: number) => Promise<Float32Array>;

/** Cross-entropy of each image under the model, in batches. */
export async function perExampleLosses(
  logits: Logits,
  classes: number,
  data: ImageSet,
  batch = 500,
): Promise<Float64Array> {
  const pixels = data.shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(data.count);
  for (let s = 0; s < data.count; s += batch) {
    const n = Math.min(batch, data.count - s);
    const z = await logits(data.images.subarray(s * pixels, (s + n) * pixels), n);
    for (let i = 0; i < n; i++) {
      const row = z.subarray(i * classes, (i + 1) * classes);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      out[s + i] = Math.log(sum) + max - row[data.labels[s + i]];
    }
  }
  return out;
}

/** P(score of a random member > score of a random non-member), ties counting half (Mann-Whitney). */
export function auc(members: ArrayLike<number>, nonMembers: ArrayLike<number>): number {
  const all = [...Array.from(members, (v) => ({ v, m: 1 })), ...Array.from(nonMembers, (v) => ({ v, m: 0 }))].sort(
    (a, b) => a.v - b.v,
  );
  let rankSum = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k].m) rankSum += rank;
    i = j;
  }
  const p = members.length;
  const q = nonMembers.length;
  return (rankSum - (p * (p + 1)) / 2) / (p * q);
}

/** max over thresholds t of P(member score ≥ t) − P(non-member score ≥ t). */
export function advantage(members: ArrayLike<number>, nonMembers: ArrayLike<number>): number {
  const all = [...Array.from(members, (v) => ({ v, m: 1 })), ...Array.from(nonMembers, (v) => ({ v, m: 0 }))].sort(
    (a, b) => b.v - a.v,
  );
  let tp = 0;
  let fp = 0;
  let best = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j < all.length && all[j].v === all[i].v) {
      if (all[j].m) tp++;
      else fp++;
      j++;
    }
    best = Math.max(best, tp / members.length - fp / nonMembers.length);
    i = j;
  }
  return best;
}

export interface MembershipResult {
  /** Members and non-members attacked (equal numbers). */
  images: number;
  loss: { auc: number; advantage: number };
  calibrated: { auc: number; advantage: number };
}

/**
 * Both attacks on `members` (training images) against as many `nonMembers`; `calibration` (other held-out images)
 * gives each class's median loss for the calibrated attack.
 */
export async function membershipInference(
  logits: Logits,
  classes: number,
  members: ImageSet,
  nonMembers: ImageSet,
  calibration: ImageSet,
): Promise<MembershipResult> {
  if (members.count === 0 || members.count !== nonMembers.count)
    throw new InputError(
      'membership inference needs equal, non-zero numbers of members and non-members, ' +
        `got ${members.count} and ${nonMembers.count}`,
    );
  const [lm, ln, lc] = [
    await perExampleLosses(logits, classes, members),
    await perExampleLosses(logits, classes, nonMembers),
    await perExampleLosses(logits, classes, calibration),
  ];
  const medians = Array.from({ length: classes }, (_, c) => {
    const of = [...lc].filter((_, i) => calibration.labels[i] === c).sort((a, b) => a - b);
    return of.length ? of[of.length >> 1] : 0;
  });
  const score = (loss: Float64Array) => Array.from(loss, (v) => -v);
  const calibrated = (loss: Float64Array, set: ImageSet) => Array.from(loss, (v, i) => -(v - medians[set.labels[i]]));
  const [sm, sn] = [score(lm), score(ln)];
  const [cm, cn] = [calibrated(lm, members), calibrated(ln, nonMembers)];
  return {
    images: members.count,
    loss: { auc: auc(sm, sn), advantage: advantage(sm, sn) },
    calibrated: { auc: auc(cm, cn), advantage: advantage(cm, cn) },
  };
}
