// The experiment's evaluation of one cell: one attack on the test images (a backdoor trigger stamped on every image,
// FGSM or DeepFool), the safety-critical class's miss rate under it, robust accuracy, and, with an input guard,
// which attacked inputs feature squeezing flags (calibrated on clean held-out images at its false-positive rate).
import { createHash } from 'node:crypto';
import { runAttack } from '../attacks/run.js';
import { AttackTarget } from '../attacks/target.js';
import { loadPair, sliceSet } from '../data/fashion.js';
import { calibrateMargin, withMargin } from '../metrics/safety-margin.js';
import { calibrateThreshold, squeezeScores } from '../detect/squeeze.js';
import { InputError } from '../input-error.js';
import { RegularFileError, readRegular } from '../io/regular-file.js';
import type { SampleResult } from '../metrics/metrics.js';
import { MODEL_LIMITS, OnnxError, parseModel } from '../onnx/model.js';
import { checkBackdoor } from '../poison/backdoor.js';
import { stamp } from '../poison/attacks.js';
import { argmax } from '../metrics/predictions.js';
import type { ExperimentEvalRequest, ExperimentEvalResult, JobProgress } from './protocol.js';

export async function experimentJob(
  req: ExperimentEvalRequest,
  progress: (p: JobProgress) => void,
): Promise<ExperimentEvalResult> {
  const bytes = await readRegular(req.modelPath, MODEL_LIMITS.maxBytes).catch((e: unknown) => {
    throw e instanceof RegularFileError ? new OnnxError(req.modelPath, e.message) : e;
  });
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (digest !== req.modelSha256)
    throw new OnnxError(req.modelPath, `SHA-256 is ${digest}, expected ${req.modelSha256}`);
  let model = parseModel(bytes, req.modelPath);
  const data = await loadPair(req, req.classes, req.limit);
  let margin: ExperimentEvalResult['margin'];
  if (req.margin) {
    // Calibrated on clean images the attacks never see, then part of the model the attacks attack.
    const plain = await AttackTarget.create(model);
    const c = req.margin.calibration;
    const all = await loadPair(c, c.classes, c.from + c.count);
    const held = sliceSet(all, c.from, all.count);
    const m = calibrateMargin(
      await plain.logits(held.images, held.count),
      held.labels,
      plain.classes,
      req.safetyCritical,
      req.margin.maxAccuracyDrop,
    );
    margin = { value: m.margin, accuracyBefore: m.accuracyBefore, accuracyAfter: m.accuracyAfter };
    model = withMargin(model, plain.classes, req.safetyCritical, m.margin);
  }
  const target = await AttackTarget.create(model);
  const d = data.images.length / data.count;
  const [, rows, cols] = data.shape;
  const range: [number, number] = req.range;
  const guard = req.guard ? await calibrate(req.guard, target, range) : undefined;
  const flagged: boolean[] = [];
  const scoreGuard = async (adv: Float32Array, n: number) => {
    if (!guard) return;
    const scores = await squeezeScores((x, k) => target.logits(x, k), adv, n, data.shape, guard.config, range);
    for (const s of scores) flagged.push(s > guard.threshold);
  };
  let results: SampleResult[];
  if (req.attack === 'trigger') {
    if (!req.trigger) throw new InputError('the trigger attack needs a trigger');
    checkBackdoor(req.trigger, data.shape, target.classes, 'poisoning');
    const value = range[0] + (req.trigger.value / 255) * (range[1] - range[0]);
    results = [];
    for (let s = 0; s < data.count; s += 500) {
      const n = Math.min(500, data.count - s);
      const clean = data.images.slice(s * d, (s + n) * d);
      const stamped = clean.slice();
      for (let k = 0; k < n; k++) stamp(stamped, k, rows, cols, req.trigger, value);
      const [a, b] = [await target.logits(clean, n), await target.logits(stamped, n)];
      for (let k = 0; k < n; k++)
        results.push({
          label: data.labels[s + k],
          clean: argmax(a, k * target.classes, target.classes),
          adversarial: argmax(b, k * target.classes, target.classes),
          linf: 0,
          l2: 0,
        });
      await scoreGuard(stamped, n);
      progress({ task: 'trigger', done: s + n, total: data.count });
    }
  } else {
    const spec = req.attack === 'fgsm' ? { attack: 'fgsm' as const, eps: req.eps } : { attack: 'deepfool' as const };
    results = await runAttack(target, data, spec, {
      range: { min: range[0], max: range[1] },
      seed: req.seed,
      onAdversarial: (adv, n) => scoreGuard(adv, n),
      onProgress: (done, total) => progress({ task: req.attack, done, total }),
    });
  }
  const s = req.safetyCritical;
  const ofClass = results.map((r, i) => ({ r, i })).filter(({ r }) => r.label === s);
  const share = (n: number, of: number) => (of ? n / of : NaN);
  const missed = ofClass.filter(({ r }) => r.adversarial !== s);
  return {
    images: results.length,
    cleanAccuracy: share(results.filter((r) => r.clean === r.label).length, results.length),
    robustAccuracy: share(
      results.filter((r) => r.clean === r.label && r.adversarial === r.label).length,
      results.length,
    ),
    safetyCritical: {
      images: ofClass.length,
      cleanMissRate: share(ofClass.filter(({ r }) => r.clean !== s).length, ofClass.length),
      missRate: share(missed.length, ofClass.length),
      falseAlarmRate: share(
        results.filter((r) => r.label !== s && r.clean === s).length,
        results.filter((r) => r.label !== s).length,
      ),
    },
    ...(margin ? { margin } : {}),
    ...(guard
      ? {
          guard: {
            threshold: guard.threshold,
            flagged: share(flagged.filter(Boolean).length, flagged.length),
            // A flagged input is refused, not answered: what still gets through wrong.
            guardedMissRate: share(missed.filter(({ i }) => !flagged[i]).length, ofClass.length),
          },
        }
      : {}),
  };
}

async function calibrate(
  g: NonNullable<ExperimentEvalRequest['guard']>,
  target: AttackTarget,
  range: [number, number],
) {
  const clean = await loadPair(g.calibration, g.calibration.classes, g.calibration.count);
  const scores = await squeezeScores(
    (x, k) => target.logits(x, k),
    clean.images,
    clean.count,
    clean.shape,
    g.config,
    range,
  );
  return { config: g.config, threshold: calibrateThreshold(scores, g.fpr) };
}
