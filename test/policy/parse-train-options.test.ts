// The train block's options beyond the defense: CutMix and distillation, and the refusals naming their paths.
import { describe, expect, test } from '@jest/globals';
import { parsePolicy } from '../../policy/index.js';

const parse = (text: string) => parsePolicy(text, { file: 'secmlops.yaml' });
const base = (train: string) => `
version: 1
name: tr
people: { mia: {} }
roles: { R2: { members: [mia] } }
stages: [train]
artifacts:
  dataset:
    root: /data
    files: [{ path: i.gz, sha256: ${'a'.repeat(64)} }, { path: l.gz, sha256: ${'b'.repeat(64)} }]
    splits: { train: { images: i.gz, labels: l.gz } }
${train}`;

describe('the train block’s options', () => {
  test('parses distillation from a pinned teacher or at a temperature alone, and refuses the rest', () => {
    const t = (distill: string, more = '') =>
      base(`train: { arch: mlp, epochs: 2, defense: { kind: pgd, eps: 0.1 }, distill: ${distill}${more} }`);
    const sha = 'c'.repeat(64);
    expect(parse(t(`{ temperature: 4, teacher: { path: t.onnx, sha256: ${sha} } }`)).train?.distill).toEqual({
      temperature: 4,
      alpha: 0.9,
      teacher: { path: 't.onnx', sha256: sha },
    });
    expect(parse(t('{ temperature: 20 }')).train?.distill).toEqual({ temperature: 20, alpha: 1 });
    expect(() => parse(t('{ temperature: 0 }'))).toThrow(
      'secmlops.yaml: train.distill.temperature: expected a temperature above 0, got 0',
    );
    expect(() => parse(t('{ temperature: 2, alpha: 0.5 }'))).toThrow(
      'secmlops.yaml: train.distill.alpha: without a teacher the network trains at temperature T alone: alpha must be 1',
    );
    expect(() => parse(t('{ temperature: 2, teacher: { path: t.onnx } }'))).toThrow(
      'secmlops.yaml: train.distill.teacher.sha256: missing; this key is required',
    );
    expect(() => parse(t('{ temperature: 2 }', ', augment: { cutmix: { alpha: 1 } }'))).toThrow(
      'secmlops.yaml: train.distill: distillation with CutMix is not built yet',
    );
  });

  test('parses CutMix with its default probability, and refuses what is out of range or not built', () => {
    const t = (augment: string, defense = 'pgd, eps: 0.1') =>
      base(`train: { arch: small-cnn, epochs: 2, defense: { kind: ${defense} }, augment: ${augment} }`);
    expect(parse(t('{ cutmix: { alpha: 1 } }')).train?.augment).toEqual({ cutmix: { alpha: 1, prob: 0.5 } });
    expect(() => parse(t('{ cutmix: { alpha: 0 } }'))).toThrow(
      'secmlops.yaml: train.augment.cutmix.alpha: expected a Beta parameter above 0, got 0',
    );
    expect(() => parse(t('{ cutmix: { alpha: 1, prob: 0 } }'))).toThrow(
      'secmlops.yaml: train.augment.cutmix.prob: expected a probability in (0, 1], got 0',
    );
    expect(() => parse(t('{ cutmix: { alpha: 1 } }', 'trades, eps: 0.1'))).toThrow(
      'secmlops.yaml: train.augment.cutmix: CutMix with trades is not built yet; use none, fgsm-rs or pgd',
    );
    expect(() => parse(t('{ mixup: { alpha: 1 } }'))).toThrow('train.augment.mixup: unknown key "mixup"');
  });
});
