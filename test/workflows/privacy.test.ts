// DP-SGD in the train stage on a real Temporal server: the policy's dp-sgd defense trains with per-example clipping
// and noise, the stage records (ε, δ) from the accountant as metrics, and a privacy gate passes or fails on them.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { epsilon, stepsFor } from '../../engine/privacy/rdp.js';
import type { Envelope } from '../../activities/attestation.js';
import type { ReleasePredicate } from '../../activities/release.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { verifyFile } from '../../cli/verify.js';
import { loadWrittenPolicy, makeFixture, withTrainingSet, testPolicy, type Fixture } from '../helpers/fixture.js';
import { result, startPipeline, startStack, uniqueId, waitForStage, type Stack } from '../helpers/temporal.js';

let fx: Fixture;
let stack: Stack;
let files: { path: string; sha256: string }[];

beforeAll(async () => {
  fx = await makeFixture();
  files = await withTrainingSet(fx);
  stack = await startStack(fx);
});
afterAll(async () => stack?.stop());

async function policy(gate: string, evaluate = '', release = false) {
  return testPolicy(fx, {
    stages:
      `  - name: train\n    approval: false${evaluate ? '\n  - name: evaluate\n    approval: false' : ''}` +
      (release ? '\n  - release' : ''),
    files,
    trainSplit: true,
    extra:
      'train:\n  arch: small-cnn\n  epochs: 1\n  limit: 2000\n' +
      '  defense: { kind: dp-sgd, noiseMultiplier: 1.0, clip: 1.0, sampleRate: 0.05, delta: 1e-5 }\n' +
      `${evaluate}\ngates:\n  - { id: privacy, metric: train.privacy.epsilon, op: "<=", value: ${gate} }`,
  });
}

describe('DP-SGD in the train stage', () => {
  test('records (ε, δ) from the accountant and passes an ε gate it meets', async () => {
    const r = await result(await startPipeline(stack.client, await policy('10'), uniqueId('dp')));
    expect(r.state).toBe('passed');
    const train = r.stages[0];
    const want = epsilon({ sampleRate: 0.05, noiseMultiplier: 1, steps: stepsFor(0.05, 1) }, 1e-5).epsilon;
    expect(train.metrics['train.privacy.epsilon']).toBeCloseTo(want, 10);
    expect(train.metrics['train.privacy.delta']).toBe(1e-5);
    // Above chance (10%) after 20 noisy steps of about 100 examples.
    expect(train.metrics['train.accuracy']).toBeGreaterThan(0.15);
    expect(train.findings.join('\n')).toMatch(/DP-SGD: \(ε, δ\) = \(\d+\.\d{3}, 0\.00001\) after 20 steps/);
    expect(train.gates).toEqual([expect.objectContaining({ id: 'privacy', passed: true })]);
  }, 120_000);

  test('the evaluate stage runs membership inference on the trained model and records its AUC and advantage', async () => {
    const evaluate =
      'evaluate:\n  limit: 100\n  attacks: [{ id: fgsm, attack: fgsm, eps: 0.05 }]\n  privacy: { members: train, count: 200 }';
    const p = await policy('10', evaluate);
    const r = await result(await startPipeline(stack.client, p, uniqueId('dp-mia')));
    expect(r.state).toBe('passed');
    const ev = r.stages[1];
    const auc = ev.metrics['evaluate.privacy.mia_auc'];
    expect(auc).toBeGreaterThan(0);
    expect(auc).toBeLessThan(1);
    expect(ev.metrics['evaluate.privacy.mia_advantage']).toBeGreaterThanOrEqual(0);
    expect(ev.evaluation?.membership?.images).toBe(200);
    expect(auc).toBe(Math.max(ev.evaluation!.membership!.loss.auc, ev.evaluation!.membership!.calibrated.auc));
  }, 180_000);

  test('the release attestation states (ε, δ) and the mechanism, and verify checks them against the evidence', async () => {
    const p = await policy('10', '', true);
    const id = uniqueId('dp-release');
    const handle = await startPipeline(stack.client, p, id);
    await waitForStage(handle, 'release', ['waiting']);
    await stack.decide(id, 'release', 'omar');
    await stack.decide(id, 'release', 'carol');
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const ref = r.stages[1].artifacts.attestation;
    const envelope = JSON.parse((await new LocalArtifactStore(fx.artifacts).get(ref)).toString()) as Envelope;
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString()) as { predicate: ReleasePredicate };
    const predicate = statement.predicate;
    expect(predicate.privacy).toEqual({
      epsilon: r.stages[0].metrics['train.privacy.epsilon'],
      delta: 1e-5,
      noiseMultiplier: 1,
      clip: 1,
      sampleRate: 0.05,
    });
    const report = await verifyFile(ref, { policy: loadWrittenPolicy(p, id), artifactsDir: fx.artifacts });
    expect(report.problems).toEqual([]);
  }, 120_000);

  test('fails an ε gate it does not meet, naming the ε measured', async () => {
    const r = await result(await startPipeline(stack.client, await policy('0.1'), uniqueId('dp-gate')));
    expect(r.state).toBe('failed');
    expect(r.stages[0].error).toMatch(/failed gates: privacy \(train\.privacy\.epsilon <= 0\.1, measured \d/);
  }, 120_000);
});
