// The release check with the poisoning defense on: the model must have been trained on the sanitised split the data
// stage's signed evidence names. Training evidence that read the original (poisoned) files, or another copy, is a
// problem the signer refuses; the sanitised split and the originals both become attested subjects.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync, sign } from 'node:crypto';
import { rawPublicKey } from '../../activities/keys.js';
import {
  canonicalEvidence,
  checkRelease,
  datasetSubjects,
  parsePolicy,
  sanitisedPath,
  subjectDigest,
  type Evidence,
  type EvidenceBody,
  type EvidenceKind,
  type EvidencePayloads,
  type FileDigest,
} from '../../policy/index.js';

const { privateKey } = generateKeyPairSync('ed25519');
const evidenceKey = rawPublicKey(privateKey);
const hex = (c: string) => c.repeat(64);
const FILES: FileDigest[] = [
  { path: 'train-images.gz', sha256: hex('e') },
  { path: 'train-labels.gz', sha256: hex('f') },
];
const policy = parsePolicy(
  `
version: 1
name: p
people: { dana: {}, mia: {} }
roles: { R1: { members: [dana] } }
stages:
  - { name: data, approval: false }
  - { name: train, approval: false }
artifacts:
  dataset:
    root: /data
    files:
${FILES.map((f) => `      - { path: ${f.path}, sha256: ${f.sha256} }`).join('\n')}
    splits:
      train: { images: train-images.gz, labels: train-labels.gz }
data:
  poisoning: { method: activation-clustering }
train: { arch: small-cnn, epochs: 1 }
`,
  { file: 'p.yaml' },
);
const subject = { repo: 'acme/models', headSha: 'a'.repeat(40), author: 'mia' };
const PIPELINE = 'pipe';

function evidence<K extends EvidenceKind>(kind: K, stage: string | undefined, payload: EvidencePayloads[K]) {
  const body: EvidenceBody<K> = {
    v: 1,
    kind,
    pipelineId: PIPELINE,
    workflowId: stage ? `${PIPELINE}/${stage}` : PIPELINE,
    ...(stage ? { stage: stage as 'data' } : {}),
    subjectDigest: subjectDigest(subject),
    policyDigest: hex('f'),
    issuedAt: new Date().toISOString(),
    payload,
  };
  return {
    body,
    keyId: 'k',
    signature: sign(null, canonicalEvidence(body), privateKey).toString('base64'),
  } as Evidence<K>;
}

const SANITISED = { images: hex('a'), labels: hex('b'), removed: hex('c') };

function dossier(trainingRead: FileDigest[]) {
  const start = evidence('start', undefined, {
    subject,
    policy,
    policyRef: 'p.yaml',
    policySource: { kind: 'local', root: '/p' },
    authenticatedBy: { channel: 'cli', keyId: 'k' },
  });
  const data = [
    evidence('manifest', 'data', { files: FILES }),
    evidence('validation', 'data', {
      dataset: FILES,
      splits: [
        {
          split: 'train',
          images: 1000,
          rows: 28,
          cols: 28,
          classCounts: [],
          pixelMean: 0,
          pixelStd: 0,
          pixelMin: 0,
          pixelMax: 1,
        },
      ],
      metrics: {},
    }),
    evidence('sanitisation', 'data', {
      split: 'train',
      dataset: FILES,
      output: SANITISED,
      images: 1000,
      removed: 50,
      metrics: { 'data.poison.flagged': 50 },
      config: policy.data!.poisoning,
    }),
  ];
  const train = [
    evidence('training', 'train', { modelSha256: hex('d'), dataset: trainingRead, metrics: {}, config: policy.train }),
  ];
  return {
    pipelineId: PIPELINE,
    evidenceKey,
    start,
    stages: [
      { name: 'data' as const, evidence: data },
      { name: 'train' as const, evidence: train },
    ],
    audit: [],
  };
}

const sanitisedRead = [
  { path: sanitisedPath('train-images.gz'), sha256: SANITISED.images },
  { path: sanitisedPath('train-labels.gz'), sha256: SANITISED.labels },
];
const refusal = /stage train: training read \[.*\], not the data stage's sanitised split/;

describe('release check with data.poisoning', () => {
  test('training on the sanitised split passes that check, and both splits become subjects', () => {
    const { problems, release } = checkRelease(dossier(sanitisedRead), { upTo: 'passed' });
    expect(problems.filter((p) => refusal.test(p))).toEqual([]);
    expect(problems.filter((p) => p.startsWith('stage data') || p.startsWith('stage train'))).toEqual([]);
    expect(release!.stages[0].metrics['data.poison.flagged']).toBe(50);
    expect(datasetSubjects(release!)).toEqual([
      { name: 'dataset/train-images.gz', sha256: hex('e') },
      { name: 'dataset/train-labels.gz', sha256: hex('f') },
      { name: 'sanitised/train-images.gz', sha256: SANITISED.images },
      { name: 'sanitised/train-labels.gz', sha256: SANITISED.labels },
      { name: 'sanitised/train/removed.json', sha256: SANITISED.removed },
    ]);
  });

  test.each([
    ['the original, poisoned files', FILES],
    ['another sanitised copy', [sanitisedRead[0], { ...sanitisedRead[1], sha256: hex('0') }]],
    ['only the images', [sanitisedRead[0]]],
  ])('training that read %s is refused', (_what, read) => {
    const { problems } = checkRelease(dossier(read), { upTo: 'passed' });
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(refusal)]));
  });

  test('sanitisation evidence that read files other than the pinned ones is refused', () => {
    const d = dossier(sanitisedRead);
    const forged = evidence('sanitisation', 'data', {
      ...(d.stages[0].evidence[2] as Evidence<'sanitisation'>).body.payload,
      dataset: [{ path: 'train-images.gz', sha256: hex('9') }, FILES[1]],
    });
    d.stages[0].evidence[2] = forged;
    const { problems } = checkRelease(d, { upTo: 'passed' });
    expect(problems).toEqual(
      expect.arrayContaining([expect.stringContaining('sanitisation read train-images.gz with SHA-256 9999')]),
    );
  });
});
