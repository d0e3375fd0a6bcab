// The policy's poisoning blocks: data.poisoning (the data stage's sanitisation) and evaluate.backdoor (the trigger
// the evaluate stage measures), their defaults, the gate metrics they make available, and what they refuse.
import { describe, expect, test } from '@jest/globals';
import { parsePolicy } from '../../policy/index.js';

const base = (extra: string, stages = '[data, train, evaluate]') => `
version: 1
name: poison
people: { dana: {}, mia: {}, alice: {} }
roles: { R1: { members: [dana] }, R2: { members: [mia] }, R3: { members: [alice] } }
stages: ${stages}
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz }, test: { images: i.gz, labels: l.gz } }
train: { arch: small-cnn, epochs: 1 }
evaluate:
  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]
${extra}`;
const parse = (text: string) => parsePolicy(text, { file: 'p.yaml' });

describe('data.poisoning', () => {
  test('defaults: the train split, a small CNN for 4 epochs, rate 5%, at most 25% removed', () => {
    const p = parse(
      base(
        'data:\n  poisoning: { method: activation-clustering }\ngates:\n  - { metric: data.poison.flagged_fraction, op: "<=", value: 0.1 }\n  - { metric: data.poison.class.0.flagged, op: "<=", value: 100 }',
      ),
    );
    expect(p.data?.poisoning).toEqual({
      split: 'train',
      method: 'activation-clustering',
      arch: 'small-cnn',
      epochs: 4,
      rate: 0.05,
      maxRemoval: 0.25,
      seed: 1,
    });
  });

  test.each([
    ['an unknown method', 'data:\n  poisoning: { method: magic }', 'data.poisoning.method'],
    [
      'a rate of 0',
      'data:\n  poisoning: { method: spectral, rate: 0 }',
      'data.poisoning.rate: expected a poison rate in (0, 0.5]',
    ],
    ['a rate above 0.5', 'data:\n  poisoning: { method: spectral, rate: 0.6 }', 'data.poisoning.rate'],
    [
      'a split the train stage does not read',
      'data:\n  poisoning: { method: spectral, split: test }',
      'would leave what it trains on unchecked',
    ],
    [
      'an unknown split',
      'data:\n  poisoning: { method: spectral, split: nope }',
      'split "nope" is not in artifacts.dataset.splits',
    ],
    [
      'an unknown key',
      'data:\n  poisoning: { method: spectral, epoch: 3 }',
      'data.poisoning.epoch: unknown key "epoch"',
    ],
    [
      'a poison gate without data.poisoning',
      'gates: [{ metric: data.poison.flagged, op: "<=", value: 1 }]',
      'metric "data.poison.flagged" is measured only when data.poisoning is set',
    ],
    [
      'a poison gate on a class the dataset lacks',
      'data:\n  poisoning: { method: spectral }\ngates: [{ metric: data.poison.class.10.flagged, op: "<=", value: 1 }]',
      'names class 10',
    ],
  ])('refuses %s', (_what, extra, message) => {
    expect(() => parse(base(extra))).toThrow(message);
  });

  test('spectral signatures that would always remove more than maxRemoval are refused', () => {
    expect(() => parse(base('data:\n  poisoning: { method: spectral, rate: 0.2, maxRemoval: 0.1 }'))).toThrow(
      'data.poisoning.maxRemoval: spectral signatures remove 1.5 × rate (0.3) of every class',
    );
  });

  test('is refused without a train stage: a sanitised split nobody trains on would be attested for nothing', () => {
    expect(() => parse(base('data:\n  poisoning: { method: spectral }', '[data]'))).toThrow(
      'the sanitised split is for the train stage, which this policy does not run',
    );
  });

  test('is refused when the policy does not run the data stage', () => {
    expect(() => parse(base('data:\n  poisoning: { method: spectral }', '[train, evaluate]'))).toThrow(
      'poisoning detection runs in the data stage, which this policy does not run',
    );
  });
});

describe('evaluate.backdoor', () => {
  test('defaults: a 3-pixel white patch at the bottom-right corner; its success rate can gate', () => {
    const text = base('gates: [{ metric: evaluate.backdoor.success_rate, op: "<=", value: 0.05 }]').replace(
      '  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]',
      '  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]\n  backdoor: { target: 0 }',
    );
    const p = parse(text);
    expect(p.evaluate?.backdoor).toEqual({ target: 0, patch: 3, position: 'bottom-right', value: 255 });
    expect(p.gates.map((g) => g.metric)).toEqual(['evaluate.backdoor.success_rate']);
  });

  test.each([
    ['a target outside the classes', 'backdoor: { target: 10 }', 'evaluate.backdoor.target'],
    ['a pixel value above 255', 'backdoor: { target: 0, value: 256 }', 'evaluate.backdoor.value'],
    ['an unknown corner', 'backdoor: { target: 0, position: middle }', 'evaluate.backdoor.position'],
  ])('refuses %s', (_what, block, message) => {
    const text = base('').replace(
      '  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]',
      `  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]\n  ${block}`,
    );
    expect(() => parse(text)).toThrow(message);
  });

  test('its gate is refused without evaluate.backdoor, and "backdoor" is no attack id', () => {
    expect(() => parse(base('gates: [{ metric: evaluate.backdoor.success_rate, op: "<=", value: 0.05 }]'))).toThrow(
      'measured only when the evaluate stage runs with evaluate.backdoor',
    );
    expect(() =>
      parse(base('').replace('[{ id: fgsm, attack: fgsm, eps: 0.1 }]', '[{ id: backdoor, attack: fgsm, eps: 0.1 }]')),
    ).toThrow('"backdoor" is reserved for metric names');
  });
});
