// The evaluate job: clean accuracy and every attack of the suite, on the first `limit` images of a labeled set, or
// on one part of them (sharded evaluation: the per-image values go back for the merge).
import { ATTACKS_WITH_GRADIENTS } from '../attacks/gradient-free.js';
import { runAttack } from '../attacks/run.js';
import { AttackTarget } from '../attacks/target.js';
import { loadPair, sliceSet, type ImageSet } from '../data/fashion.js';
import { referenceOf, summarise } from '../monitor/stats.js';
import { InputError } from '../input-error.js';
import { membershipInference } from '../privacy/mia.js';
import { inspectModel } from '../inspect.js';
import { robust } from '../metrics/metrics.js';
import { countCorrect } from '../metrics/predictions.js';
import { backdoorSuccess, checkBackdoor } from '../poison/backdoor.js';
import { RegularFileError, readRegular } from '../io/regular-file.js';
import { MODEL_LIMITS, OnnxError, parseModel } from '../onnx/model.js';
import { createHash } from 'node:crypto';
import type { EvaluatePart, EvaluateRequest, EvaluateResult, JobProgress } from './protocol.js';
import { mergeParts, shardRange, toColumns } from './evaluate-shards.js';

export async function evaluateJob(req: EvaluateRequest, progress: (p: JobProgress) => void): Promise<EvaluateResult> {
  const part = await evaluatePart(req, progress);
  // The whole set is the one-part case of the sharded merge: both paths compute metrics in one place.
  return {
    ...mergeParts([{ ...part, images: part.end - part.start, start: 0, end: part.end - part.start }]),
    ...(req.shard ? { part } : {}),
  };
}

/** The attacks and the curve on this job's part of the set (all of it unless sharded), per image. */
async function evaluatePart(req: EvaluateRequest, progress: (p: JobProgress) => void): Promise<EvaluatePart> {
  const bytes = await readRegular(req.modelPath, req.modelLimits?.maxBytes ?? MODEL_LIMITS.maxBytes).catch(
    (e: unknown) => {
      throw e instanceof RegularFileError ? new OnnxError(req.modelPath, e.why) : e;
    },
  );
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== req.modelSha256)
    throw new OnnxError(req.modelPath, `SHA-256 is ${digest}, expected ${req.modelSha256}; refusing to load it`);
  const model = parseModel(bytes, req.modelPath, req.modelLimits);
  const all = await loadPair(req, req.classes, req.limit);
  const { start, end } = shardRange(all.count, req.shard?.index ?? 0, req.shard?.count ?? 1);
  const data = sliceSet(all, start, end);
  const withoutGradient = inspectModel(model).withoutGradient;
  const target = await AttackTarget.create(model, { threads: req.threads, executionProvider: req.executionProvider });
  // A trigger that cannot be measured fails now, not after hours of attacks.
  if (req.backdoor) checkBackdoor(req.backdoor, all.shape, target.classes, 'evaluate.backdoor');
  const range = { min: req.range[0], max: req.range[1] };
  const out: EvaluatePart = {
    images: all.count,
    start,
    end,
    classes: target.classes,
    withoutGradient,
    cleanCorrect: 0,
    attacks: [],
  };
  for (const a of req.attacks) {
    const { id, ...asked } = a;
    // A model with an op the engine cannot differentiate is still evaluated, with the forward-only Square Attack.
    const spec =
      withoutGradient.length && ATTACKS_WITH_GRADIENTS.includes(asked.attack)
        ? { ...asked, attack: 'square' as const }
        : asked;
    const started = performance.now();
    const results = await runAttack(target, data, spec, {
      range,
      seed: req.seed,
      offset: start,
      onProgress: (done, total) => progress({ task: id, done, total }),
    });
    out.attacks.push({ id, spec, seconds: (performance.now() - started) / 1000, samples: toColumns(results) });
  }
  // With no attacks asked (a federated round's check), clean accuracy is measured on its own.
  if (req.attacks.length === 0) out.cleanCorrect = await cleanCorrect(target, data);
  // The measurements over the whole set run once, in the first part.
  if (start === 0) {
    if (req.backdoor) {
      out.backdoor = await backdoorSuccess((x, n) => target.logits(x, n), target.classes, all, req.backdoor, {
        range: req.range,
        where: 'evaluate.backdoor',
        onProgress: (done, total) => progress({ task: 'backdoor', done, total }),
      });
    }
    if (req.members) out.membership = await membership(req, target, progress);
    if (req.reference) out.reference = await referenceFor(target, all, progress);
  }
  if (req.curve) {
    out.curve = [];
    for (const eps of req.curve.eps) {
      const spec = {
        attack: withoutGradient.length ? ('square' as const) : req.curve.attack,
        eps,
        steps: req.curve.steps,
      };
      const results = await runAttack(target, data, spec, {
        range,
        seed: req.seed,
        offset: start,
        onProgress: (done, total) => progress({ task: `curve eps ${eps}`, done, total }),
      });
      out.curve.push({ attack: spec.attack, eps, robust: results.filter(robust).length });
    }
  }
  return out;
}

/** The clean images summarised as the serving monitor will summarise its inputs (engine/monitor/stats.ts). */
async function referenceFor(target: AttackTarget, data: ImageSet, progress: (p: JobProgress) => void) {
  const d = data.images.length / data.count;
  const summaries = [];
  for (let i = 0; i < data.count; i += 256) {
    const n = Math.min(256, data.count - i);
    const x = data.images.subarray(i * d, (i + n) * d);
    summaries.push(...summarise(x, await target.logits(x, n), n));
    progress({ task: 'drift reference', done: i + n, total: data.count });
  }
  return referenceOf(summaries, target.classes);
}

/** Membership inference: the first `count` training images against the first `count` of the evaluated split. */
async function membership(req: EvaluateRequest, target: AttackTarget, progress: (p: JobProgress) => void) {
  const m = req.members!;
  progress({ task: 'membership inference', done: 0, total: 1 });
  const members = await loadPair(m, m.classes, m.count);
  const held = await loadPair(req, req.classes, 2 * m.count);
  if (members.count < m.count || held.count < 2 * m.count)
    throw new InputError(
      `evaluate.privacy.count: ${m.count} members and ${2 * m.count} held-out images (non-members and ` +
        `calibration) are needed; the splits hold ${members.count} and ${held.count}`,
    );
  const r = await membershipInference(
    (x, n) => target.logits(x, n),
    target.classes,
    members,
    sliceSet(held, 0, m.count),
    sliceSet(held, m.count, 2 * m.count),
  );
  progress({ task: 'membership inference', done: 1, total: 1 });
  return r;
}

async function cleanCorrect(target: AttackTarget, data: ImageSet, batch = 500): Promise<number> {
  const pixels = data.shape.reduce((a, b) => a * b, 1);
  let correct = 0;
  for (let s = 0; s < data.count; s += batch) {
    const n = Math.min(batch, data.count - s);
    const logits = await target.logits(data.images.subarray(s * pixels, (s + n) * pixels), n);
    correct += countCorrect(logits, data.labels.subarray(s, s + n), target.classes);
  }
  return correct;
}
