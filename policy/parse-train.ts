// The `train` block: what the train stage trains and how.
import { own } from './own.js';
import type { ParseOptions } from './parse.js';
import { readFederated } from './parse-federated.js';
import { Reader, join } from './reader.js';
import type { Artifacts, Stage, TrainConfig } from './types.js';

export function readTrain(
  r: Reader,
  v: unknown,
  stages: Stage[],
  artifacts: Artifacts,
  opts: ParseOptions,
): TrainConfig | undefined {
  const runs = stages.some((s) => s.name === 'train');
  if (v === undefined) {
    if (runs) r.fail('train', 'the train stage needs a train block (arch, defense, epochs)');
    return undefined;
  }
  const m = r.mapping(v, 'train', {
    required: ['arch'],
    optional: [
      'epochs',
      'split',
      'defense',
      'batch',
      'lr',
      'optimizer',
      'schedule',
      'weightDecay',
      'earlyStop',
      'limit',
      'seed',
      'range',
      'checkpointEvery',
      'heartbeatTimeout',
      'augment',
      'distill',
      'federated',
    ],
  });
  if (m.epochs === undefined && m.federated === undefined) r.fail('train.epochs', 'missing; this key is required');
  if (m.epochs !== undefined && m.federated !== undefined)
    r.fail('train.epochs', 'federated training counts train.federated.rounds and localEpochs instead');
  const split = m.split === undefined ? 'train' : r.string(m.split, 'train.split');
  if (!own(artifacts.dataset?.splits, split)) r.fail('train.split', unknownSplit(split, artifacts));
  let defense: TrainConfig['defense'] = { kind: 'none' };
  if (m.defense !== undefined) {
    const d = r.mapping(m.defense, 'train.defense', {
      required: ['kind'],
      optional: ['eps', 'steps', 'beta', 'stepSize', 'noiseMultiplier', 'clip', 'sampleRate', 'delta'],
    });
    const kind = r.oneOf(d.kind, 'train.defense.kind', ['none', 'fgsm-rs', 'pgd', 'trades', 'dp-sgd'] as const);
    for (const k of ['noiseMultiplier', 'clip', 'sampleRate', 'delta'] as const)
      if (d[k] !== undefined && kind !== 'dp-sgd') r.fail(`train.defense.${k}`, `${k} applies to dp-sgd only`);
    if (d.steps !== undefined && kind !== 'pgd' && kind !== 'trades')
      r.fail('train.defense.steps', 'steps applies to pgd and trades only');
    if (d.beta !== undefined && kind !== 'trades') r.fail('train.defense.beta', 'beta applies to trades only');
    if (d.stepSize !== undefined && kind === 'none')
      r.fail('train.defense.stepSize', 'stepSize applies to fgsm-rs, pgd and trades');
    if (kind === 'dp-sgd') {
      for (const k of ['eps', 'steps', 'beta', 'stepSize'] as const)
        if (d[k] !== undefined) r.fail(`train.defense.${k}`, `${k} applies to the adversarial defenses, not dp-sgd`);
      const positive = (k: 'noiseMultiplier' | 'clip', max: number) => {
        const v = r.number(d[k], `train.defense.${k}`, 0, max);
        if (!(v > 0)) r.fail(`train.defense.${k}`, `must be above 0, got ${v}`);
        return v;
      };
      const sampleRate = r.number(d.sampleRate, 'train.defense.sampleRate', 0, 1);
      if (!(sampleRate > 0)) r.fail('train.defense.sampleRate', `must be in (0, 1], got ${sampleRate}`);
      const delta = d.delta === undefined ? 1e-5 : r.number(d.delta, 'train.defense.delta', 0, 1);
      if (!(delta > 0 && delta < 1)) r.fail('train.defense.delta', `must be in (0, 1), got ${delta}`);
      defense = {
        kind,
        noiseMultiplier: positive('noiseMultiplier', 1000),
        clip: positive('clip', 1e6),
        sampleRate,
        delta,
      };
    } else if (kind !== 'none') {
      const eps = r.number(d.eps, 'train.defense.eps', 0, 1);
      const steps = d.steps === undefined ? undefined : r.integer(d.steps, 'train.defense.steps', 1, 100);
      const step =
        d.stepSize === undefined
          ? {}
          : { stepSize: r.number(d.stepSize, 'train.defense.stepSize', Number.MIN_VALUE, 2 * eps) };
      if (kind === 'fgsm-rs') defense = { kind, eps, ...step };
      if (kind === 'pgd') defense = { kind, eps, ...(steps !== undefined && { steps }), ...step };
      if (kind === 'trades')
        defense = {
          kind,
          eps,
          ...(steps !== undefined && { steps }),
          ...(d.beta !== undefined && { beta: r.number(d.beta, 'train.defense.beta', 0, 100) }),
          ...step,
        };
    }
  }
  const earlyStop = m.earlyStop === undefined ? false : r.boolean(m.earlyStop, 'train.earlyStop');
  if (earlyStop && (defense.kind === 'none' || defense.kind === 'dp-sgd'))
    r.fail(
      'train.earlyStop',
      'early stopping measures robust validation accuracy at the defense’s eps: give a defense',
    );
  const range =
    m.range === undefined ? [0, 1] : r.list(m.range, 'train.range').map((x, i) => r.number(x, join('train.range', i)));
  if (range.length !== 2 || !(range[0] < range[1]))
    r.fail('train.range', `expected [min, max] with min < max, got [${range.join(', ')}]`);
  let heartbeatTimeoutMs = 60_000;
  if (m.heartbeatTimeout !== undefined) {
    // The activity heartbeats every 10 s even between progress reports; less than that would time out healthy runs.
    heartbeatTimeoutMs = r.duration(
      m.heartbeatTimeout,
      'train.heartbeatTimeout',
      'expected a duration of at least 15s such as "60s" or "2m"',
      15_000,
    );
  }
  const augment = m.augment === undefined ? undefined : readAugment(r, m.augment, defense.kind);
  const distill = m.distill === undefined ? undefined : readDistill(r, m.distill, defense.kind, !!augment?.cutmix);
  const federated =
    m.federated === undefined ? undefined : readFederated(r, m.federated, { defense, earlyStop, distill }, opts);
  // Not faked: a train stage would otherwise train centrally under a block that says federated.
  if (federated && runs)
    r.fail(
      'train.federated',
      'the train stage does not run federated training yet; drop train from stages and run `secmlops federated`',
    );
  return {
    ...(augment ? { augment } : {}),
    ...(distill ? { distill } : {}),
    ...(federated ? { federated } : {}),
    split,
    arch: r.oneOf(m.arch, 'train.arch', ['small-cnn', 'wide-cnn', 'mlp'] as const),
    defense,
    // Federated: every epoch any client trains, for the metrics (rounds × localEpochs).
    epochs: federated ? federated.rounds * federated.localEpochs : r.integer(m.epochs, 'train.epochs', 1, 1000),
    batch: m.batch === undefined ? 128 : r.integer(m.batch, 'train.batch', 1, 65536),
    lr: m.lr === undefined ? 1e-3 : r.number(m.lr, 'train.lr', 0, 10),
    optimizer: m.optimizer === undefined ? 'adam' : r.oneOf(m.optimizer, 'train.optimizer', ['adam', 'sgd'] as const),
    schedule:
      m.schedule === undefined
        ? 'constant'
        : r.oneOf(m.schedule, 'train.schedule', ['constant', 'cosine', 'one-cycle'] as const),
    weightDecay: m.weightDecay === undefined ? 0 : r.number(m.weightDecay, 'train.weightDecay', 0, 1),
    earlyStop,
    limit: m.limit === undefined ? undefined : r.integer(m.limit, 'train.limit', 1),
    seed: m.seed === undefined ? 1 : r.integer(m.seed, 'train.seed', 0),
    range: [range[0], range[1]],
    checkpointEvery: m.checkpointEvery === undefined ? 100 : r.integer(m.checkpointEvery, 'train.checkpointEvery', 1),
    heartbeatTimeoutMs,
  };
}

/** train.augment: CutMix, with any defense but TRADES and DP-SGD (not built with them yet). */
function readAugment(r: Reader, v: unknown, defense: TrainConfig['defense']['kind']): TrainConfig['augment'] {
  const m = r.mapping(v, 'train.augment', { optional: ['cutmix'] });
  if (m.cutmix === undefined) return {};
  const c = r.mapping(m.cutmix, 'train.augment.cutmix', { required: ['alpha'], optional: ['prob'] });
  const alpha = r.number(c.alpha, 'train.augment.cutmix.alpha', 0, 100);
  if (!(alpha > 0)) r.fail('train.augment.cutmix.alpha', `expected a Beta parameter above 0, got ${alpha}`);
  const prob = c.prob === undefined ? 0.5 : r.number(c.prob, 'train.augment.cutmix.prob', 0, 1);
  if (!(prob > 0)) r.fail('train.augment.cutmix.prob', `expected a probability in (0, 1], got ${prob}`);
  if (defense === 'trades' || defense === 'dp-sgd')
    r.fail('train.augment.cutmix', `CutMix with ${defense} is not built yet; use none, fgsm-rs or pgd`);
  return { cutmix: { alpha, prob } };
}

/** train.distill: a pinned teacher and a temperature, or a temperature alone (defensive distillation's teacher). */
function readDistill(
  r: Reader,
  v: unknown,
  defense: TrainConfig['defense']['kind'],
  cutmix: boolean,
): TrainConfig['distill'] {
  const p = 'train.distill';
  const m = r.mapping(v, p, { required: ['temperature'], optional: ['alpha', 'teacher'] });
  const temperature = r.number(m.temperature, `${p}.temperature`, 0, 1000);
  if (!(temperature > 0)) r.fail(`${p}.temperature`, `expected a temperature above 0, got ${temperature}`);
  if (cutmix) r.fail(p, 'distillation with CutMix is not built yet');
  if (defense === 'trades' || defense === 'dp-sgd') r.fail(p, `distillation with ${defense} is not built yet`);
  let teacher: { path: string; sha256: string } | undefined;
  if (m.teacher !== undefined) {
    const t = r.mapping(m.teacher, `${p}.teacher`, { required: ['path', 'sha256'] });
    teacher = {
      path: r.string(t.path, `${p}.teacher.path`),
      sha256: r.string(t.sha256, `${p}.teacher.sha256`, /^[0-9a-f]{64}$/, 'a SHA-256 of 64 lowercase hex digits'),
    };
  }
  const alpha = m.alpha === undefined ? (teacher ? 0.9 : 1) : r.number(m.alpha, `${p}.alpha`, 0, 1);
  if (!teacher && alpha !== 1)
    r.fail(`${p}.alpha`, 'without a teacher the network trains at temperature T alone: alpha must be 1');
  return { temperature, alpha, ...(teacher ? { teacher } : {}) };
}

/** Names the split that is missing and the ones there are: a split is looked up as an own key only. */
export function unknownSplit(split: string, artifacts: Artifacts): string {
  const names = Object.keys(artifacts.dataset?.splits ?? {});
  return `split "${split}" is not in artifacts.dataset.splits; ${names.length ? `splits are: ${names.join(', ')}` : 'it defines none'}`;
}
