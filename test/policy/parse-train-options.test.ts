// The train block's options beyond the defense: CutMix and distillation, and the refusals naming their paths.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rawPublicKey } from '../../activities/keys.js';
import { parsePolicy } from '../../policy/index.js';

const parse = (text: string) => parsePolicy(text, { file: 'secmlops.yaml' });
const baseOf = (train: string) => `
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
      baseOf(`train: { arch: mlp, epochs: 2, defense: { kind: pgd, eps: 0.1 }, distill: ${distill}${more} }`);
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
      baseOf(`train: { arch: small-cnn, epochs: 2, defense: { kind: ${defense} }, augment: ${augment} }`);
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

  test('parses train.federated with its defaults, and refuses what cannot run', () => {
    const base = (train: string) =>
      baseOf(train).replace('stages: [train]', 'stages: [{ name: plan, approval: false }]');
    // Two distinct valid Ed25519 public keys (RFC 8032 test vectors 1 and 2).
    const k1 = '11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
    const k2 = 'PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=';
    const clients = (n: number) =>
      `[${[k1, k2, k1]
        .slice(0, n)
        .map((k, i) => `{ id: client-${i + 1}, publicKey: '${k}' }`)
        .join(', ')}]`;
    const t = (fed: string, more = '') =>
      base(`train: { arch: mlp${more}, federated: { clients: ${clients(2)}, rounds: 3${fed} } }`);
    expect(parse(t('')).train).toMatchObject({
      epochs: 3,
      federated: {
        clients: [
          { id: 'client-1', publicKey: k1 },
          { id: 'client-2', publicKey: k2 },
        ],
        rounds: 3,
        localEpochs: 1,
        quorum: 2,
        partition: { kind: 'iid' },
        secureAggregation: false,
        roundTimeoutMs: 600_000,
        roundsPerRun: 10,
      },
    });
    expect(parse(t(', partition: { kind: dirichlet, alpha: 0.5 }, localEpochs: 2')).train?.epochs).toBe(6);
    expect(parse(t(', dp: { clip: 0.5, noiseMultiplier: 1.1 }')).train?.federated?.dp).toEqual({
      clip: 0.5,
      noiseMultiplier: 1.1,
      delta: 1e-5,
    });
    const refused: [string, string][] = [
      [t(', quorum: 3'), 'train.federated.quorum: a quorum of 3 is more than the 2 clients listed'],
      [
        t(', partition: { kind: dirichlet, alpha: 0 }'),
        'train.federated.partition.alpha: expected a Dirichlet α above 0, got 0',
      ],
      [
        t(', quorum: 1, secureAggregation: true'),
        'train.federated.quorum: with secure aggregation a round needs at least 2',
      ],
      [t('', ', epochs: 2'), 'train.epochs: federated training counts train.federated.rounds and localEpochs instead'],
      [
        t('', ', defense: { kind: dp-sgd, noiseMultiplier: 1, clip: 1, sampleRate: 0.01 }'),
        'federated training with dp-sgd is not built; train.federated.dp gives client-level privacy (DP-FedAvg)',
      ],
      [t(', dp: { clip: 0, noiseMultiplier: 1 }'), 'train.federated.dp.clip: expected a clipping norm above 0, got 0'],
      [
        t(', dp: { clip: 1, noiseMultiplier: 0 }'),
        'train.federated.dp.noiseMultiplier: expected a noise multiplier above 0, got 0',
      ],
      [t(', dp: { clip: 1, noiseMultiplier: 1, delta: 1 }'), 'train.federated.dp.delta: expected δ in (0, 1), got 1'],
      [t(', dp: { clip: 1000, noiseMultiplier: 1 }'), 'train.federated.dp.clip: expected a number'],
      [t(', dp: { noiseMultiplier: 1 }'), 'train.federated.dp.clip: missing; this key is required'],
      [
        base(`train: { arch: mlp, federated: { clients: ${clients(1)}, rounds: 3 } }`),
        'train.federated.clients: a federation needs at least 2 clients, got 1',
      ],
      [
        base(`train: { arch: mlp, federated: { clients: ${clients(3)}, rounds: 3 } }`),
        'train.federated.clients[2]: two clients share one key',
      ],
      [
        base(
          `train: { arch: mlp, federated: { rounds: 1, clients: ` +
            `[{ id: gpu, publicKey: '${k1}' }, { id: c, publicKey: '${k2}' }] } }`,
        ),
        '"gpu" is a queue of the pipeline\'s own workers',
      ],
    ];
    refused.push([
      t('').replace('stages: [{ name: plan, approval: false }]', 'stages: [train]'),
      'train.federated: the train stage does not run federated training yet',
    ]);
    for (const [text, message] of refused) expect(() => parse(text)).toThrow(message);
  });

  test('the committed federated example parses: three clients, secure aggregation, a quorum of two', () => {
    const keys = new Map<string, string>();
    const readKeyFile = (path: string) => {
      if (!keys.has(path)) keys.set(path, rawPublicKey(generateKeyPairSync('ed25519').publicKey));
      return keys.get(path)!;
    };
    const text = readFileSync('examples/fashion-mnist/federated.yaml', 'utf8');
    const f = parsePolicy(text, { file: 'federated.yaml', readKeyFile }).train?.federated;
    expect(f).toMatchObject({ rounds: 3, quorum: 2, secureAggregation: true });
    expect(f?.clients.map((c) => c.id)).toEqual(['client-1', 'client-2', 'client-3']);
  });
});
