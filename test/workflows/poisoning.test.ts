// The data stage's poisoning defense on a real Temporal server: a BadNets-poisoned training split is sanitised by
// the data stage, the train stage trains on the sanitised copy (read from the artifact store and checked against the
// digest in the data stage's signed result), and the release attests the original and the sanitised digests.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import type { ReleasePredicate } from '../../activities/release.js';
import { openEnvelope, type Envelope } from '../../activities/attestation.js';
import { loadPublicKey } from '../../activities/keys.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { verifyFile } from '../../cli/verify.js';
import { readPair } from '../../engine/data/fashion.js';
import { parseIdx } from '../../engine/data/idx.js';
import { writeIdxGz } from '../../engine/data/idx-write.js';
import { poison } from '../../engine/poison/attacks.js';
import { scoreDetection } from '../../engine/poison/detect.js';
import { gunzipSync } from 'node:zlib';
import {
  FASHION,
  TEST_FILES,
  loadWrittenPolicy,
  makeFixture,
  sha256,
  testPolicy,
  type Fixture,
} from '../helpers/fixture.js';
import { result, startPipeline, startStack, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;
const TRAIN = { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' };
/** The first images of Fashion-MNIST's training set, 5% of them stamped with a trigger and relabelled to class 0. */
const COUNT = 30_000;
let truth: number[];

beforeAll(async () => {
  fx = await makeFixture();
  const full = await readPair({ images: join(FASHION, TRAIN.images), labels: join(FASHION, TRAIN.labels) }, 10);
  const pixels = full.rows * full.cols;
  const set = {
    images: full.images.slice(0, COUNT * pixels),
    labels: full.labels.slice(0, COUNT),
    count: COUNT,
    rows: full.rows,
    cols: full.cols,
  };
  const p = poison(
    set,
    { kind: 'badnets', rate: 0.05, seed: 1, target: 0, patch: 3, position: 'bottom-right', value: 255 },
    10,
  );
  truth = p.indices;
  await writeIdxGz(join(fx.dataset, TRAIN.images), [COUNT, full.rows, full.cols], p.images);
  await writeIdxGz(join(fx.dataset, TRAIN.labels), [COUNT], p.labels);
  stack = await startStack(fx);
}, 60_000);
afterAll(async () => stack?.stop());

async function policy(poisoning: string, gates = '') {
  const files = await Promise.all(
    [TRAIN.images, TRAIN.labels, ...TEST_FILES].map(async (f) => ({
      path: f,
      sha256: await sha256(join(fx.dataset, f)),
    })),
  );
  return testPolicy(fx, {
    stages:
      '  - name: data\n    approval: false\n  - name: train\n    approval: false\n' +
      '  - name: evaluate\n    approval: false\n  - release',
    files,
    trainSplit: true,
    extra:
      `data:\n  poisoning: ${poisoning}\ntrain:\n  arch: small-cnn\n  epochs: 1\n  limit: 2000\n` +
      `evaluate:\n  limit: 500\n  attacks: [{ id: fgsm, attack: fgsm, eps: 0.05 }]\n  backdoor: { target: 0 }\n` +
      `  privacy: { members: train, count: 200 }\n${gates}`,
  });
}

describe('poisoning defense in the data stage', () => {
  test('the data stage removes the BadNets images, the train stage trains on what is left, the release names both', async () => {
    const p = await policy(
      '{ method: activation-clustering, epochs: 4 }',
      'gates:\n  - { id: little-removed, metric: data.poison.flagged_fraction, op: "<=", value: 0.2 }\n' +
        '  - { id: no-backdoor, metric: evaluate.backdoor.success_rate, op: "<=", value: 0.5 }',
    );
    const id = uniqueId('poison');
    const handle = await startPipeline(stack.client, p, id);
    await waitForStage(handle, 'release', ['waiting'], 240_000);
    await stack.decide(id, 'release', 'omar');
    await stack.decide(id, 'release', 'carol');
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const [data, train, evaluate, release] = r.stages;
    const store = new LocalArtifactStore(fx.artifacts);
    const removed = (
      JSON.parse((await store.get(data.artifacts['sanitised.removed'])).toString()) as {
        removed: number[];
      }
    ).removed;
    const score = scoreDetection(removed, truth, COUNT);
    expect(score.recall).toBeGreaterThanOrEqual(0.9);
    expect(score.false_positive_rate).toBeLessThanOrEqual(0.05);
    expect(data.metrics['data.poison.flagged']).toBe(removed.length);
    expect(data.metrics['data.poison.class.0.flagged']).toBeGreaterThanOrEqual(0.9 * truth.length);
    expect(data.gates).toEqual([expect.objectContaining({ id: 'little-removed', passed: true })]);
    expect(data.findings.join('\n')).toMatch(/removed \d+ of 30000 images; most affected: class 0/);
    // The sanitised split in the store holds exactly the images that were not removed.
    const images = parseIdx(gunzipSync(await store.get(data.artifacts['sanitised.images'])), 'sanitised');
    expect(images.dims).toEqual([COUNT - removed.length, 28, 28]);
    expect(train.findings.join('\n')).toContain(`trained on the data stage's sanitised split (${removed.length}`);
    // The evaluate stage measured the trigger on the test images of the other classes and gated on it.
    const testSet = await readPair(
      { images: join(fx.dataset, TEST_FILES[0]), labels: join(fx.dataset, TEST_FILES[1]) },
      10,
    );
    const others = [...testSet.labels.subarray(0, 500)].filter((l) => l !== 0).length;
    expect(evaluate.evaluation?.backdoor).toMatchObject({ images: others, target: 0 });
    expect(evaluate.gates).toEqual([
      expect.objectContaining({ id: 'no-backdoor', measured: evaluate.metrics['evaluate.backdoor.success_rate'] }),
    ]);
    // Membership inference read the training files too; the signer accepted that evidence below.
    expect(evaluate.metrics['evaluate.privacy.mia_auc']).toBeGreaterThan(0);
    // The attestation names the original files and the sanitised copy, and verifies.
    const envelope = JSON.parse((await store.get(release.artifacts.attestation)).toString()) as Envelope;
    const statement = openEnvelope(envelope, await loadPublicKey(join(fx.keys, 'release.pub')));
    const subjects = Object.fromEntries(statement.subject.map((s) => [s.name, s.digest.sha256]));
    expect(subjects[`dataset/${TRAIN.images}`]).toBe(await sha256(join(fx.dataset, TRAIN.images)));
    expect(subjects[`sanitised/${TRAIN.images}`]).toBe(data.artifacts['sanitised.images'].slice(7));
    expect(subjects[`sanitised/${TRAIN.labels}`]).toBe(data.artifacts['sanitised.labels'].slice(7));
    expect(subjects['sanitised/train/removed.json']).toBe(data.artifacts['sanitised.removed'].slice(7));
    const predicate = statement.predicate as unknown as ReleasePredicate;
    expect(predicate.sanitisation).toMatchObject({ split: 'train', removed: removed.length, of: COUNT });
    const report = await verifyFile(release.artifacts.attestation, {
      policy: loadWrittenPolicy(p, id),
      artifactsDir: fx.artifacts,
    });
    expect(report.problems).toEqual([]);
  }, 300_000);

  test('a detector that would remove more than maxRemoval fails the data stage, naming the limit', async () => {
    // Activation clustering removes the 5% of poison; the policy allows 1%.
    const p = await policy('{ method: activation-clustering, maxRemoval: 0.01 }');
    const r = await result(await startPipeline(stack.client, p, uniqueId('poison-cap')));
    expect(r.state).toBe('failed');
    expect(r.stages[0].error).toMatch(
      /the activation-clustering detector flagged \d+ of 30000 images \(\d+\.\d%\), more than data\.poisoning\.maxRemoval \(1\.0%\)/,
    );
    expect(r.stages[1].state).toBe('pending');
  }, 180_000);
});
