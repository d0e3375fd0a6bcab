// The policy's privacy blocks: train.defense kind dp-sgd and evaluate.privacy (membership inference), their
// defaults, the gate metrics they make available, and what they refuse.
import { describe, expect, test } from '@jest/globals';
import { parsePolicy } from '../../policy/index.js';

const base = (train: string, evaluate = '', gates = '') => `
version: 1
name: privacy
people: { mia: {}, alice: {} }
roles: { R2: { members: [mia] }, R3: { members: [alice] } }
stages: [train, evaluate]
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz }, test: { images: i.gz, labels: l.gz } }
train: ${train}
evaluate:
  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]
${evaluate}
${gates}`;
const parse = (text: string) => parsePolicy(text, { file: 'p.yaml' });
const DP = '{ arch: small-cnn, epochs: 5, defense: { kind: dp-sgd, noiseMultiplier: 1.1, clip: 1, sampleRate: 0.01 } }';

describe('train.defense dp-sgd', () => {
  test('parses with δ 1e-5 by default, and its privacy metrics can gate', () => {
    const p = parse(base(DP, '', 'gates: [{ metric: train.privacy.epsilon, op: "<=", value: 3 }]'));
    expect(p.train?.defense).toEqual({ kind: 'dp-sgd', noiseMultiplier: 1.1, clip: 1, sampleRate: 0.01, delta: 1e-5 });
    expect(p.gates[0].metric).toBe('train.privacy.epsilon');
  });

  test.each([
    [
      'σ of 0',
      DP.replace('noiseMultiplier: 1.1', 'noiseMultiplier: 0'),
      'train.defense.noiseMultiplier: must be above 0',
    ],
    ['C of 0', DP.replace('clip: 1', 'clip: 0'), 'train.defense.clip: must be above 0'],
    ['q of 0', DP.replace('sampleRate: 0.01', 'sampleRate: 0'), 'train.defense.sampleRate: must be in (0, 1]'],
    ['δ of 1', DP.replace('sampleRate: 0.01', 'sampleRate: 0.01, delta: 1'), 'train.defense.delta: must be in (0, 1)'],
    [
      'an eps',
      DP.replace('clip: 1', 'clip: 1, eps: 0.1'),
      'train.defense.eps: eps applies to the adversarial defenses',
    ],
    ['early stopping', DP.replace('epochs: 5', 'epochs: 5, earlyStop: true'), 'train.earlyStop'],
    [
      'a clip on another defense',
      '{ arch: small-cnn, epochs: 1, defense: { kind: pgd, eps: 0.1, clip: 1 } }',
      'train.defense.clip: clip applies to dp-sgd only',
    ],
  ])('refuses %s', (_what, train, message) => {
    expect(() => parse(base(train))).toThrow(message);
  });

  test('a privacy gate without dp-sgd is refused', () => {
    expect(() =>
      parse(
        base('{ arch: small-cnn, epochs: 1 }', '', 'gates: [{ metric: train.privacy.epsilon, op: "<=", value: 3 }]'),
      ),
    ).toThrow('metric "train.privacy.epsilon" is measured only when train.defense.kind is dp-sgd');
  });
});

describe('evaluate.privacy', () => {
  test('members default to the train split, 1000 images; its metrics can gate', () => {
    const p = parse(
      base(DP, '  privacy: {}', 'gates: [{ metric: evaluate.privacy.mia_advantage, op: "<=", value: 0.1 }]'),
    );
    expect(p.evaluate?.privacy).toEqual({ members: 'train', count: 1000 });
  });

  test.each([
    ['members equal to the evaluated split', '  privacy: { members: test }', 'must differ from evaluate.split'],
    ['an unknown members split', '  privacy: { members: nope }', 'split "nope" is not in artifacts.dataset.splits'],
    ['a count of 0', '  privacy: { count: 0 }', 'evaluate.privacy.count'],
  ])('refuses %s', (_what, evaluate, message) => {
    expect(() => parse(base(DP, evaluate))).toThrow(message);
  });

  test('its gate is refused without evaluate.privacy', () => {
    expect(() => parse(base(DP, '', 'gates: [{ metric: evaluate.privacy.mia_auc, op: "<=", value: 0.6 }]'))).toThrow(
      'measured only when the evaluate stage runs with evaluate.privacy',
    );
  });
});
