// The `evaluate` block (the attack suite) and the gate metrics each stage measures.
import {
  BACKDOOR_METRIC_PATTERN,
  DATA_METRIC_PATTERN,
  EVALUATE_METRIC_PATTERN,
  POISON_METRIC_PATTERN,
  PRIVACY_METRIC_PATTERN,
  TRAIN_METRIC_PATTERN,
} from './gates.js';
import { own } from './own.js';
import { unknownSplit } from './parse-train.js';
import { Reader, join } from './reader.js';
import {
  ATTACK_NAMES,
  MODEL_LIMIT_KEYS,
  type Artifacts,
  type AttackConfig,
  type BackdoorConfig,
  type EvaluateConfig,
  type ModelLimitsConfig,
  type PoisoningConfig,
  type Stage,
  type TrainConfig,
} from './types.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export function readEvaluate(r: Reader, v: unknown, stages: Stage[], artifacts: Artifacts): EvaluateConfig | undefined {
  const runs = stages.some((s) => s.name === 'evaluate');
  if (v === undefined) {
    if (runs) r.fail('evaluate', 'the evaluate stage needs an evaluate block with its attacks');
    return undefined;
  }
  const m = r.mapping(v, 'evaluate', {
    required: ['attacks'],
    optional: [
      'split',
      'limit',
      'range',
      'seed',
      'safetyCritical',
      'curve',
      'modelLimits',
      'backdoor',
      'privacy',
      'shards',
    ],
  });
  if (runs && !artifacts.model && !stages.some((s) => s.name === 'train'))
    r.fail(
      'artifacts.model',
      'the evaluate stage needs a model to attack: artifacts.model, or a train stage before it',
    );
  const split = m.split === undefined ? 'test' : r.string(m.split, 'evaluate.split');
  const dataset = artifacts.dataset;
  if (!dataset || !own(dataset.splits, split)) r.fail('evaluate.split', unknownSplit(split, artifacts));
  const classes = dataset.classes;
  const range =
    m.range === undefined
      ? [0, 1]
      : r.list(m.range, 'evaluate.range').map((x, i) => r.number(x, join('evaluate.range', i)));
  if (range.length !== 2 || !(range[0] < range[1]))
    r.fail('evaluate.range', `expected [min, max] with min < max, got [${range.join(', ')}]`);
  const safetyCritical =
    m.safetyCritical === undefined
      ? []
      : r
          .list(m.safetyCritical, 'evaluate.safetyCritical')
          .map((x, i) => r.integer(x, join('evaluate.safetyCritical', i), 0, classes - 1));
  const ids = new Set<string>();
  const attacks = r.list(m.attacks, 'evaluate.attacks', { nonEmpty: true }).map((raw, i) => {
    const path = join('evaluate.attacks', i);
    const a = r.mapping(raw, path, {
      required: ['id', 'attack'],
      optional: ['eps', 'steps', 'stepSize', 'restarts', 'randomStart', 'norm', 'overshoot', 'maxIter', 'queries'],
    });
    const id = r.string(a.id, join(path, 'id'), ID, 'an attack id of letters, digits, "_" or "-"');
    if (ids.has(id)) r.fail(join(path, 'id'), `attack id "${id}" is used twice`);
    if (id === 'class' || id === 'clean_accuracy' || id === 'backdoor')
      r.fail(join(path, 'id'), `"${id}" is reserved for metric names`);
    ids.add(id);
    const cfg: AttackConfig = { id, attack: r.oneOf(a.attack, join(path, 'attack'), ATTACK_NAMES) };
    if (cfg.attack !== 'deepfool') cfg.eps = r.number(a.eps, join(path, 'eps'), 0, range[1] - range[0]);
    else if (a.eps !== undefined) r.fail(join(path, 'eps'), 'DeepFool finds minimal perturbations and takes no eps');
    if (a.steps !== undefined) cfg.steps = r.integer(a.steps, join(path, 'steps'), 1, 10_000);
    if (a.stepSize !== undefined) cfg.stepSize = r.number(a.stepSize, join(path, 'stepSize'), 0);
    if (a.restarts !== undefined) cfg.restarts = r.integer(a.restarts, join(path, 'restarts'), 1, 100);
    if (a.randomStart !== undefined) cfg.randomStart = r.boolean(a.randomStart, join(path, 'randomStart'));
    if (a.norm !== undefined) cfg.norm = r.oneOf(a.norm, join(path, 'norm'), ['linf', 'l2'] as const);
    if (a.overshoot !== undefined) cfg.overshoot = r.number(a.overshoot, join(path, 'overshoot'), 0, 1);
    if (a.maxIter !== undefined) cfg.maxIter = r.integer(a.maxIter, join(path, 'maxIter'), 1, 1000);
    if (a.queries !== undefined) cfg.queries = r.integer(a.queries, join(path, 'queries'), 1, 100_000);
    return cfg;
  });
  let curve: EvaluateConfig['curve'];
  if (m.curve !== undefined) {
    const c = r.mapping(m.curve, 'evaluate.curve', { required: ['attack', 'eps'], optional: ['steps'] });
    const eps = r
      .list(c.eps, 'evaluate.curve.eps', { nonEmpty: true })
      .map((x, i) => r.number(x, join('evaluate.curve.eps', i), 0, range[1] - range[0]));
    curve = { attack: r.oneOf(c.attack, 'evaluate.curve.attack', ['fgsm', 'pgd'] as const), eps };
    if (c.steps !== undefined) curve.steps = r.integer(c.steps, 'evaluate.curve.steps', 1, 10_000);
  }
  return {
    curve,
    ...(m.backdoor === undefined ? {} : { backdoor: readBackdoor(r, m.backdoor, classes) }),
    ...(m.privacy === undefined ? {} : { privacy: readPrivacy(r, m.privacy, artifacts, split) }),
    ...(m.modelLimits === undefined ? {} : { modelLimits: readModelLimits(r, m.modelLimits) }),
    split,
    limit: m.limit === undefined ? undefined : r.integer(m.limit, 'evaluate.limit', 1),
    range: [range[0], range[1]],
    seed: m.seed === undefined ? 1 : r.integer(m.seed, 'evaluate.seed', 0),
    // 64: the most parts engine/jobs/evaluate-shards.ts cuts (each a gpu activity).
    ...(m.shards === undefined ? {} : { shards: m.shards === 'auto' ? 'auto' : readShards(r, m.shards) }),
    safetyCritical,
    attacks,
  };
}

/** Membership inference: which split the model was trained on, and how many of its images to attack. */
function readPrivacy(r: Reader, v: unknown, artifacts: Artifacts, split: string): { members: string; count: number } {
  const m = r.mapping(v, 'evaluate.privacy', { optional: ['members', 'count'] });
  const members = m.members === undefined ? 'train' : r.string(m.members, 'evaluate.privacy.members');
  if (!own(artifacts.dataset?.splits, members)) r.fail('evaluate.privacy.members', unknownSplit(members, artifacts));
  if (members === split)
    r.fail(
      'evaluate.privacy.members',
      `the members split must differ from evaluate.split ("${split}"), whose images are the non-members`,
    );
  return { members, count: m.count === undefined ? 1000 : r.integer(m.count, 'evaluate.privacy.count', 1, 100_000) };
}

const CORNERS = ['top-left', 'top-right', 'bottom-left', 'bottom-right'] as const;

/** The trigger to measure; whether it fits the images is checked where the images are read. */
function readBackdoor(r: Reader, v: unknown, classes: number): BackdoorConfig {
  const path = 'evaluate.backdoor';
  const m = r.mapping(v, path, { required: ['target'], optional: ['patch', 'position', 'value'] });
  let position: BackdoorConfig['position'] = 'bottom-right';
  if (typeof m.position === 'string') position = r.oneOf(m.position, join(path, 'position'), CORNERS);
  else if (m.position !== undefined) {
    const at = r.mapping(m.position, join(path, 'position'), { required: ['x', 'y'] });
    position = { x: r.integer(at.x, join(path, 'position.x'), 0), y: r.integer(at.y, join(path, 'position.y'), 0) };
  }
  return {
    target: r.integer(m.target, join(path, 'target'), 0, classes - 1),
    patch: m.patch === undefined ? 3 : r.integer(m.patch, join(path, 'patch'), 1, 1024),
    position,
    value: m.value === undefined ? 255 : r.integer(m.value, join(path, 'value'), 0, 255),
  };
}

/**
 * Raises (or lowers) the limits a model must stay within before onnxruntime sees it. Upper bounds keep a typo from
 * switching a check off: protobuf messages cannot exceed 2 GiB, and no classifier needs a million nodes.
 */
function readModelLimits(r: Reader, v: unknown): ModelLimitsConfig {
  const path = 'evaluate.modelLimits';
  const m = r.mapping(v, path, { optional: [...MODEL_LIMIT_KEYS] });
  const bounds: Record<(typeof MODEL_LIMIT_KEYS)[number], number> = {
    maxBytes: 2 ** 31 - 1,
    maxTensorBytes: 2 ** 34,
    maxTotalTensorBytes: 2 ** 34,
    maxNodes: 1_000_000,
    maxInitializers: 1_000_000,
    maxGraphDepth: 64,
    maxMessages: 50_000_000,
    maxValues: 500_000_000,
  };
  const out: ModelLimitsConfig = {};
  for (const k of MODEL_LIMIT_KEYS) {
    const x = own(m, k);
    if (x !== undefined) out[k] = r.integer(x, join(path, k), 1, bounds[k]);
  }
  return out;
}

/** Checks that a gate's metric is one a stage of this policy measures. */
export function checkGateMetric(
  r: Reader,
  path: string,
  metric: string,
  p: {
    stages: Stage[];
    artifacts: Artifacts;
    evaluate?: EvaluateConfig;
    poisoning?: PoisoningConfig;
    train?: TrainConfig;
  },
): void {
  const { stages, artifacts, evaluate } = p;
  const runs = (name: string) => stages.some((s) => s.name === name);
  const poison = POISON_METRIC_PATTERN.exec(metric);
  if (poison) {
    if (!p.poisoning) r.fail(path, `metric "${metric}" is measured only when data.poisoning is set`);
    if (poison[1] !== undefined && Number(poison[1]) >= (artifacts.dataset?.classes ?? 0))
      r.fail(path, `metric "${metric}" names class ${poison[1]}, outside 0..${(artifacts.dataset?.classes ?? 1) - 1}`);
    return;
  }
  if (PRIVACY_METRIC_PATTERN.test(metric)) {
    if (!runs('evaluate') || !evaluate?.privacy)
      r.fail(path, `metric "${metric}" is measured only when the evaluate stage runs with evaluate.privacy`);
    return;
  }
  if (BACKDOOR_METRIC_PATTERN.test(metric)) {
    if (!runs('evaluate') || !evaluate?.backdoor)
      r.fail(path, `metric "${metric}" is measured only when the evaluate stage runs with evaluate.backdoor`);
    return;
  }
  const data = DATA_METRIC_PATTERN.exec(metric);
  if (data) {
    if (!runs('data')) r.fail(path, `metric "${metric}" is measured by the data stage, which this policy does not run`);
    if (!own(artifacts.dataset?.splits, data[1]))
      r.fail(path, `metric "${metric}" names split "${data[1]}", which artifacts.dataset.splits does not define`);
    return;
  }
  const trained = TRAIN_METRIC_PATTERN.exec(metric);
  if (trained) {
    if (!runs('train'))
      r.fail(path, `metric "${metric}" is measured by the train stage, which this policy does not run`);
    if (trained[1].startsWith('privacy.') && p.train?.defense.kind !== 'dp-sgd')
      r.fail(path, `metric "${metric}" is measured only when train.defense.kind is dp-sgd`);
    return;
  }
  const ev = EVALUATE_METRIC_PATTERN.exec(metric);
  if (ev) {
    if (!runs('evaluate') || !evaluate)
      r.fail(path, `metric "${metric}" is measured by the evaluate stage, which this policy does not run`);
    const [, cleanClass, attack, attackClass] = ev;
    if (attack && !evaluate.attacks.some((a) => a.id === attack))
      r.fail(path, `metric "${metric}" names attack "${attack}", which evaluate.attacks does not define`);
    const k = cleanClass ?? attackClass;
    if (k !== undefined && Number(k) >= (artifacts.dataset?.classes ?? 0))
      r.fail(path, `metric "${metric}" names class ${k}, outside 0..${(artifacts.dataset?.classes ?? 1) - 1}`);
    return;
  }
  r.fail(
    path,
    `unknown metric "${metric}"; stages measure data.<split>.{images,min_class_fraction,max_class_fraction,pixel_mean,pixel_std}, train.{loss,accuracy,robust_validation,epochs,privacy.epsilon,privacy.delta}, data.poison.{flagged,flagged_fraction,class.<k>.flagged}, evaluate.clean_accuracy, evaluate.class.<k>.miss_rate, evaluate.backdoor.{success_rate,baseline_rate}, evaluate.privacy.{mia_auc,mia_advantage} and evaluate.<attack id>.{robust_accuracy,attack_success_rate,median_linf,median_l2,class.<k>.miss_rate}`,
  );
}

/** A part count, or (besides `auto`, handled by the caller) a clear refusal naming the choices. */
function readShards(r: Reader, v: unknown): number {
  if (typeof v === 'string') r.fail('evaluate.shards', `expected a number from 1 to 64 or "auto", got "${v}"`);
  return r.integer(v, 'evaluate.shards', 1, 64);
}
