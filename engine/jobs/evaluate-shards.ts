// Sharded evaluation's arithmetic: where each part of the set begins and ends, and the merge of the parts' per-image
// values into the metrics an unsharded run computes. Every metric is recomputed from the concatenated images (a
// median cannot be merged from medians), so sharded equals unsharded exactly when each image's result does not
// depend on its neighbours: random draws are keyed by image index, and parts start on batch boundaries.
import { computeMetrics, type SampleResult } from '../metrics/metrics.js';
import type { EvaluatePart, EvaluateResult, SampleColumns } from './protocol.js';

/**
 * A multiple of the attacks' batches (engine/attacks/run.ts: 256, DeepFool 128): Square Attack draws per batch and
 * a gradient is scaled by its batch's size, so parts start where the whole run's batches start.
 */
export const SHARD_ALIGNMENT = 256;
export const MAX_SHARDS = 64;

/** Part `index` of `count` over `images` images: whole batches, spread as evenly as they go. */
export function shardRange(images: number, index: number, count: number): { start: number; end: number } {
  if (!Number.isInteger(count) || count < 1 || count > MAX_SHARDS)
    throw new Error(`shard count ${count}: expected an integer from 1 to ${MAX_SHARDS}`);
  if (!Number.isInteger(index) || index < 0 || index >= count)
    throw new Error(`shard ${index}: expected an integer from 0 to ${count - 1}`);
  const blocks = Math.ceil(images / SHARD_ALIGNMENT);
  const before = (i: number) => Math.floor((blocks * i) / count);
  return {
    start: Math.min(images, before(index) * SHARD_ALIGNMENT),
    end: Math.min(images, before(index + 1) * SHARD_ALIGNMENT),
  };
}

export function toColumns(results: SampleResult[]): SampleColumns {
  return {
    label: results.map((r) => r.label),
    clean: results.map((r) => r.clean),
    adversarial: results.map((r) => r.adversarial),
    linf: results.map((r) => r.linf),
    l2: results.map((r) => r.l2),
  };
}

/**
 * Columns back from their stored JSON, which writes NaN (a distance the model's NaN gradient left undefined) as
 * null: null is NaN again, so a metric an unsharded run leaves unmeasured stays unmeasured. Classes must be whole
 * numbers in range, distances numbers or null; anything else is refused.
 */
function fromColumns(c: SampleColumns, classes: number, where: string): SampleResult[] {
  const n = c.label.length;
  for (const k of ['clean', 'adversarial', 'linf', 'l2'] as const)
    if (!Array.isArray(c[k]) || c[k].length !== n) throw new Error(`${where}: ${k} has not one value per image`);
  const klass = (v: unknown, k: string) => {
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) >= classes)
      throw new Error(`${where}: ${k} holds ${String(v)}, not a class of ${classes}`);
    return v as number;
  };
  const distance = (v: unknown, k: string) => {
    if (v === null) return NaN;
    if (typeof v !== 'number') throw new Error(`${where}: ${k} holds ${JSON.stringify(v)}, not a distance`);
    return v;
  };
  return c.label.map((label, i) => ({
    label: klass(label, 'label'),
    clean: klass(c.clean[i], 'clean'),
    adversarial: klass(c.adversarial[i], 'adversarial'),
    linf: distance(c.linf[i], 'linf'),
    l2: distance(c.l2[i], 'l2'),
  }));
}

/**
 * The parts of one evaluation, in any order, as one result: they must tile [0, images) and agree on the set, the
 * suite and the model's gradient rules, or the merge refuses, naming the difference.
 */
export function mergeParts(parts: EvaluatePart[]): EvaluateResult {
  if (parts.length === 0) throw new Error('no evaluation parts to merge');
  const sorted = [...parts].sort((a, b) => a.start - b.start || a.end - b.end);
  const first = sorted[0];
  const suite = (p: EvaluatePart) => JSON.stringify(p.attacks.map((a) => [a.id, a.spec]));
  const curve = (p: EvaluatePart) => JSON.stringify((p.curve ?? []).map((c) => [c.attack, c.eps]));
  let next = 0;
  for (const p of sorted) {
    const where = `the part of images ${p.start}–${p.end}`;
    if (p.start !== next) throw new Error(`${where} does not start where the previous part ended (${next})`);
    if (p.end < p.start) throw new Error(`${where} ends before it starts`);
    if (p.images !== first.images || p.classes !== first.classes)
      throw new Error(`${where} describes another set (${p.images} images, ${p.classes} classes)`);
    if (suite(p) !== suite(first) || curve(p) !== curve(first)) throw new Error(`${where} ran another attack suite`);
    if (p.withoutGradient.join() !== first.withoutGradient.join())
      throw new Error(`${where} saw other ops without a gradient rule`);
    for (const a of p.attacks)
      if (a.samples.label.length !== p.end - p.start) throw new Error(`${where}: ${a.id} has not one result per image`);
    next = p.end;
  }
  if (next !== first.images) throw new Error(`the parts cover images 0–${next}, not all ${first.images}`);
  const n = first.images;
  const attacks = first.attacks.map((a, k) => {
    const samples = sorted.flatMap((p) =>
      fromColumns(p.attacks[k].samples, first.classes, `${a.id}, images ${p.start}–${p.end}`),
    );
    // Wall time: the parts ran side by side, so the slowest is what the suite took.
    const seconds = Math.max(...sorted.map((p) => p.attacks[k].seconds));
    return { id: a.id, spec: a.spec, metrics: computeMetrics(samples, first.classes), seconds };
  });
  const cleanCorrect = sorted.reduce((s, p) => s + p.cleanCorrect, 0);
  const extras = sorted.find((p) => p.start === 0)!;
  return {
    cleanAccuracy: attacks[0]?.metrics.clean_accuracy ?? (n ? cleanCorrect / n : NaN),
    images: n,
    withoutGradient: first.withoutGradient,
    attacks,
    ...(first.curve
      ? {
          curve: first.curve.map((c, k) => ({
            attack: c.attack,
            eps: c.eps,
            robustAccuracy: sorted.reduce((s, p) => s + p.curve![k].robust, 0) / n,
          })),
        }
      : {}),
    ...(extras.reference ? { reference: extras.reference } : {}),
    ...(extras.backdoor ? { backdoor: extras.backdoor } : {}),
    ...(extras.membership ? { membership: extras.membership } : {}),
  };
}
