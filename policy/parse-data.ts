// The `data` block: the data stage's optional defenses. Today one: poisoning detection and sanitisation.
import { own } from './own.js';
import { unknownSplit } from './parse-train.js';
import type { Reader } from './reader.js';
import { POISON_DETECTORS, type Artifacts, type PoisoningConfig, type Stage, type TrainConfig } from './types.js';

export function readData(
  r: Reader,
  v: unknown,
  stages: Stage[],
  artifacts: Artifacts,
  train: TrainConfig | undefined,
): { poisoning?: PoisoningConfig } | undefined {
  if (v === undefined) return undefined;
  const m = r.mapping(v, 'data', { optional: ['poisoning'] });
  if (m.poisoning === undefined) return {};
  if (!stages.some((s) => s.name === 'data'))
    r.fail('data.poisoning', 'poisoning detection runs in the data stage, which this policy does not run');
  // The sanitised split exists to be trained on; an attestation naming it for a model nobody trained on it would
  // claim what did not happen.
  if (!stages.some((s) => s.name === 'train'))
    r.fail('data.poisoning', 'the sanitised split is for the train stage, which this policy does not run');
  const p = r.mapping(m.poisoning, 'data.poisoning', {
    required: ['method'],
    optional: ['split', 'arch', 'epochs', 'rate', 'maxRemoval', 'seed'],
  });
  // The train stage trains on the sanitised split, so by default it is the split the train stage reads.
  const split = p.split === undefined ? (train?.split ?? 'train') : r.string(p.split, 'data.poisoning.split');
  if (!own(artifacts.dataset?.splits, split)) r.fail('data.poisoning.split', unknownSplit(split, artifacts));
  if (train && train.split !== split)
    r.fail(
      'data.poisoning.split',
      `the train stage trains on split "${train.split}"; sanitising "${split}" would leave what it trains on unchecked`,
    );
  const rate = p.rate === undefined ? 0.05 : r.number(p.rate, 'data.poisoning.rate', 0, 0.5);
  if (!(rate > 0)) r.fail('data.poisoning.rate', `expected a poison rate in (0, 0.5], got ${rate}`);
  const method = r.oneOf(p.method, 'data.poisoning.method', POISON_DETECTORS);
  const maxRemoval = p.maxRemoval === undefined ? 0.25 : r.number(p.maxRemoval, 'data.poisoning.maxRemoval', 0, 1);
  if (method === 'spectral' && 1.5 * rate > maxRemoval)
    r.fail(
      'data.poisoning.maxRemoval',
      `spectral signatures remove 1.5 × rate (${+(1.5 * rate).toPrecision(6)}) of every class, ` +
        `more than maxRemoval ${maxRemoval} allows`,
    );
  return {
    poisoning: {
      split,
      method,
      arch:
        p.arch === undefined
          ? 'small-cnn'
          : r.oneOf(p.arch, 'data.poisoning.arch', ['small-cnn', 'wide-cnn', 'mlp'] as const),
      epochs: p.epochs === undefined ? 4 : r.integer(p.epochs, 'data.poisoning.epochs', 1, 100),
      rate,
      maxRemoval,
      seed: p.seed === undefined ? 1 : r.integer(p.seed, 'data.poisoning.seed', 0),
    },
  };
}
