// The side-by-side experiment's file: which defenses meet which attacks on Fashion-MNIST, and the settings they
// share. Pure (no I/O), so the CLI refuses a bad file before it connects to anything and the workflow can hold it.
import { PolicyError } from '../policy/errors.js';
import { Reader, join } from '../policy/reader.js';
import { readYaml } from '../policy/yaml.js';

export const DEFENSES = ['none', 'cutmix', 'es-at', 'distillation', 'full'] as const;
export const ATTACKS = ['poisoning', 'fgsm', 'deepfool', 'poisoning+fgsm', 'poisoning+deepfool'] as const;
export type DefenseName = (typeof DEFENSES)[number];
export type AttackName = (typeof ATTACKS)[number];

export const DEFENSE_LABELS: Record<DefenseName, string> = {
  none: 'none',
  cutmix: 'CutMix (CM)',
  'es-at': 'ES+AT',
  distillation: 'distillation (MD)',
  full: 'full policy',
};

export interface ExperimentSpec {
  name: string;
  /** A folder holding Fashion-MNIST's four files under their standard names. */
  data: string;
  safetyCritical: number;
  train: {
    arch: 'small-cnn' | 'wide-cnn' | 'mlp';
    epochs: number;
    batch: number;
    lr: number;
    seed: number;
    limit?: number;
  };
  test: { limit?: number };
  /** The Linf budget of FGSM and of adversarial training. */
  eps: number;
  defenses: DefenseName[];
  attacks: AttackName[];
  /** BadNets (Gu et al. 2017): a white square in the bottom-right corner, `rate` of the other classes relabelled. */
  poisoning: { rate: number; target: number; patch: number };
  cutmix: { alpha: number; prob: number };
  distillation: { temperature: number };
  /** ES+AT and the full policy: FGSM-RS or PGD adversarial training with early stopping on robust validation. */
  /**
   * `minClean`: early stopping keeps the most robust epoch whose held-out clean accuracy reaches it. `epochs`: the
   * adversarially trained models' own epoch count (default `train.epochs`): they learn more slowly.
   */
  adversarialTraining: {
    kind: 'fgsm-rs' | 'pgd';
    eps: number;
    steps?: number;
    stepSize?: number;
    minClean?: number;
    epochs?: number;
  };
  /**
   * The full policy's decision margin for the safety-critical class: the largest logit offset in its favour that
   * costs at most `maxAccuracyDrop` of clean accuracy on `count` calibration test images from `from` (disjoint from
   * the evaluated ones). The offset is part of the deployed model, so the attacks see it.
   */
  safetyMargin?: { maxAccuracyDrop: number; from: number; count: number };
  /** The full policy's input guard: feature squeezing at this false-positive rate on clean held-out images. */
  guard: { bits: number; median: number; fpr: number };
}

/** Parses an experiment file; `quick` shrinks it to seconds (mlp, 1 epoch, few images) for tests. */
export function parseExperiment(text: string, file: string, opts: { quick?: boolean } = {}): ExperimentSpec {
  const r = new Reader(file);
  const m = r.mapping(readYaml(text, file), '', {
    required: ['version', 'name', 'data', 'defenses', 'attacks'],
    optional: [
      'safetyCritical',
      'train',
      'test',
      'eps',
      'poisoning',
      'cutmix',
      'distillation',
      'adversarialTraining',
      'guard',
      'safetyMargin',
    ],
  });
  if (m.version !== 1) r.fail('version', 'expected 1');
  const names = <T extends string>(v: unknown, path: string, allowed: readonly T[]): T[] => {
    const list = r.list(v, path, { nonEmpty: true }).map((x, i) => r.oneOf(x, join(path, i), allowed));
    const dup = list.find((x, i) => list.indexOf(x) !== i);
    if (dup) r.fail(path, `"${dup}" is listed twice`);
    return list;
  };
  const t =
    m.train === undefined
      ? {}
      : r.mapping(m.train, 'train', { optional: ['arch', 'epochs', 'batch', 'lr', 'seed', 'limit'] });
  const test = m.test === undefined ? {} : r.mapping(m.test, 'test', { optional: ['limit'] });
  const positive = (v: unknown, path: string, fallback: number, max: number) => {
    if (v === undefined) return fallback;
    const x = r.number(v, path, 0, max);
    if (!(x > 0)) r.fail(path, `expected a value above 0, got ${x}`);
    return x;
  };
  const p =
    m.poisoning === undefined ? {} : r.mapping(m.poisoning, 'poisoning', { optional: ['rate', 'target', 'patch'] });
  const c = m.cutmix === undefined ? {} : r.mapping(m.cutmix, 'cutmix', { optional: ['alpha', 'prob'] });
  const d =
    m.distillation === undefined ? {} : r.mapping(m.distillation, 'distillation', { optional: ['temperature'] });
  const a =
    m.adversarialTraining === undefined
      ? {}
      : r.mapping(m.adversarialTraining, 'adversarialTraining', {
          optional: ['kind', 'eps', 'steps', 'stepSize', 'minClean', 'epochs'],
        });
  const sm =
    m.safetyMargin === undefined
      ? undefined
      : r.mapping(m.safetyMargin, 'safetyMargin', { required: ['maxAccuracyDrop'], optional: ['from', 'count'] });
  const g = m.guard === undefined ? {} : r.mapping(m.guard, 'guard', { optional: ['bits', 'median', 'fpr'] });
  const eps = positive(m.eps, 'eps', 0.1, 1);
  const safetyCritical = m.safetyCritical === undefined ? 6 : r.integer(m.safetyCritical, 'safetyCritical', 0, 9);
  const target = p.target === undefined ? 0 : r.integer(p.target, 'poisoning.target', 0, 9);
  if (target === safetyCritical)
    r.fail('poisoning.target', `the trigger's target must differ from the safety-critical class ${safetyCritical}`);
  const spec: ExperimentSpec = {
    name: r.string(m.name, 'name', /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ., _ and -'),
    data: r.string(m.data, 'data'),
    safetyCritical,
    train: {
      arch:
        t.arch === undefined ? 'small-cnn' : r.oneOf(t.arch, 'train.arch', ['small-cnn', 'wide-cnn', 'mlp'] as const),
      epochs: t.epochs === undefined ? 8 : r.integer(t.epochs, 'train.epochs', 1, 1000),
      batch: t.batch === undefined ? 128 : r.integer(t.batch, 'train.batch', 1, 65536),
      lr: positive(t.lr, 'train.lr', 0.002, 10),
      seed: t.seed === undefined ? 1 : r.integer(t.seed, 'train.seed', 0),
      ...(t.limit === undefined ? {} : { limit: r.integer(t.limit, 'train.limit', 100) }),
    },
    test: test.limit === undefined ? {} : { limit: r.integer(test.limit, 'test.limit', 10) },
    eps,
    defenses: names(m.defenses, 'defenses', DEFENSES),
    attacks: names(m.attacks, 'attacks', ATTACKS),
    poisoning: {
      rate: positive(p.rate, 'poisoning.rate', 0.05, 0.5),
      target,
      patch: p.patch === undefined ? 3 : r.integer(p.patch, 'poisoning.patch', 1, 14),
    },
    cutmix: { alpha: positive(c.alpha, 'cutmix.alpha', 1, 100), prob: positive(c.prob, 'cutmix.prob', 0.5, 1) },
    distillation: { temperature: positive(d.temperature, 'distillation.temperature', 20, 1000) },
    adversarialTraining: {
      kind: a.kind === undefined ? 'fgsm-rs' : r.oneOf(a.kind, 'adversarialTraining.kind', ['fgsm-rs', 'pgd'] as const),
      eps: positive(a.eps, 'adversarialTraining.eps', eps, 1),
      ...(a.steps === undefined ? {} : { steps: r.integer(a.steps, 'adversarialTraining.steps', 1, 100) }),
      ...(a.stepSize === undefined ? {} : { stepSize: positive(a.stepSize, 'adversarialTraining.stepSize', 0, 1) }),
      ...(a.minClean === undefined ? {} : { minClean: positive(a.minClean, 'adversarialTraining.minClean', 0, 1) }),
      ...(a.epochs === undefined ? {} : { epochs: r.integer(a.epochs, 'adversarialTraining.epochs', 1, 100) }),
    },
    ...(sm
      ? {
          safetyMargin: {
            maxAccuracyDrop: positive(sm.maxAccuracyDrop, 'safetyMargin.maxAccuracyDrop', 0, 0.2),
            from: sm.from === undefined ? 5000 : r.integer(sm.from, 'safetyMargin.from', 0, 9999),
            count: sm.count === undefined ? 5000 : r.integer(sm.count, 'safetyMargin.count', 100, 10_000),
          },
        }
      : {}),
    guard: {
      bits: g.bits === undefined ? 2 : r.integer(g.bits, 'guard.bits', 1, 7),
      median: g.median === undefined ? 1 : r.integer(g.median, 'guard.median', 1, 5),
      fpr: positive(g.fpr, 'guard.fpr', 0.05, 0.5),
    },
  };
  const margin = spec.safetyMargin;
  if (margin && (spec.test.limit ?? 10_000) > margin.from)
    r.fail('safetyMargin.from', `the calibration images must follow the ${spec.test.limit ?? 10_000} evaluated ones`);
  if (margin && margin.from + margin.count > 10_000)
    r.fail('safetyMargin.count', `images ${margin.from}–${margin.from + margin.count} pass the 10,000 test images`);
  if (!opts.quick) return spec;
  const at = { ...spec.adversarialTraining };
  delete at.epochs;
  return {
    ...spec,
    train: { ...spec.train, arch: 'mlp', epochs: 1, limit: 3000 },
    adversarialTraining: at,
    test: { limit: 200 },
    ...(margin ? { safetyMargin: { ...margin, from: 200, count: 500 } } : {}),
  };
}

export { PolicyError as ExperimentError };
