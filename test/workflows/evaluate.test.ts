// The evaluate stage on a real Temporal server: attacks in an engine job process, gates on the results.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sendDecision } from '../../client/decisions.js';
import { saveModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import { deployableModel, initWeights, smallCnn } from '../../engine/train/zoo.js';
import { stageWorkflowId } from '../../workflows/messages.js';
import { makeFixture, testPolicy, type Fixture } from '../helpers/fixture.js';
import { recordHistories } from '../helpers/histories.js';
import { alive, childPids, children, spawnWorker, waitUntil, type WorkerProcess } from '../helpers/processes.js';
import {
  result,
  startPipeline,
  startStack,
  testAddress,
  uniqueId,
  waitForStage,
  type Stack,
} from '../helpers/temporal.js';

const EXAMPLE = resolve('examples/fashion-mnist/model.onnx');
let fx: Fixture;
let stack: Stack;
const spawned: WorkerProcess[] = [];

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
});
afterAll(async () => {
  spawned.forEach((w) => w.child.kill('SIGKILL'));
  await stack?.stop();
});

const suite = (
  gates: string,
  attacks = '    - { id: fgsm, attack: fgsm, eps: 0.01 }\n    - { id: pgd20, attack: pgd, eps: 0.1, steps: 20 }',
  limit = 200,
  curve = '',
) => `evaluate:\n  limit: ${limit}\n  safetyCritical: [0, 6]\n${curve}  attacks:\n${attacks}\ngates:\n${gates}`;

/** Engine job processes this test process started (in-process workers fork them). */
const jobProcesses = () =>
  children(process.pid)
    .filter((l) => l.includes('job-main'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));

describe('evaluate stage', () => {
  test('the example model passes its gates and waits for the security engineer', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: EXAMPLE,
      extra: suite(
        '  - { id: accurate, metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }\n  - { id: fgsm-small, metric: evaluate.fgsm.robust_accuracy, op: ">=", value: 0.6 }',
        undefined,
        200,
        '  curve: { attack: fgsm, eps: [0, 0.02, 0.1] }\n',
      ),
    });
    const id = uniqueId('evaluate-pass');
    const handle = await startPipeline(stack.client, policy, id);
    const s = await waitForStage(handle, 'evaluate', ['waiting'], 120_000);
    const stage = s.stages[0];
    expect(stage.metrics['evaluate.images']).toBe(200);
    expect(stage.metrics['evaluate.clean_accuracy']).toBeGreaterThan(0.85);
    expect(stage.metrics['evaluate.pgd20.robust_accuracy']).toBeLessThan(0.1);
    expect(stage.metrics['evaluate.class.6.miss_rate']).toBeGreaterThan(0);
    expect(stage.gates.map((g) => [g.id, g.passed])).toEqual([
      ['accurate', true],
      ['fgsm-small', true],
    ]);
    expect(stage.artifacts.model).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(stage.evaluation?.attacks.map((a) => a.id)).toEqual(['fgsm', 'pgd20']);
    const curve = stage.evaluation!.curve!;
    expect(curve.map((c) => c.eps)).toEqual([0, 0.02, 0.1]);
    expect(curve[0].robustAccuracy).toBeCloseTo(stage.metrics['evaluate.clean_accuracy'], 6);
    expect(curve[1].robustAccuracy).toBeGreaterThanOrEqual(curve[2].robustAccuracy);
    await sendDecision(stack.client, {
      workflowId: id,
      stage: 'evaluate',
      person: 'alice',
      decision: 'approve',
      keyPath: fx.key('cli'),
    });
    expect((await result(handle)).state).toBe('passed');
    await recordHistories(stack.client, 'evaluate', [id, stageWorkflowId(id, 'evaluate')]);
  }, 180_000);

  test('a gate the model misses fails the verdict, naming the gate and the measured value', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: EXAMPLE,
      extra: suite('  - { id: robust, metric: evaluate.pgd20.robust_accuracy, op: ">=", value: 0.7 }'),
    });
    const r = await result(await startPipeline(stack.client, policy, uniqueId('evaluate-fail')));
    expect(r.state).toBe('failed');
    expect(r.reason).toMatch(
      /^stage evaluate failed: failed gates: robust \(evaluate\.pgd20\.robust_accuracy >= 0\.7, measured 0(\.0\d+)?\)$/,
    );
  }, 180_000);

  test('an untrained model fails the accuracy gate', async () => {
    const path = join(fx.dir, 'untrained.onnx');
    await writeFile(path, saveModel(deployableModel(smallCnn, initWeights(smallCnn, new Rng(5)))));
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: path,
      extra: suite('  - { id: accurate, metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }', undefined, 100),
    });
    const r = await result(await startPipeline(stack.client, policy, uniqueId('evaluate-untrained')));
    expect(r.reason).toMatch(
      /^stage evaluate failed: failed gates: accurate \(evaluate\.clean_accuracy >= 0\.85, measured 0\.\d+\)$/,
    );
  }, 180_000);

  test('a model whose bytes differ from the pinned digest is refused before it is loaded', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: EXAMPLE,
      modelSha256: 'f'.repeat(64),
      extra: suite('  - { metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }'),
    });
    const r = await result(await startPipeline(stack.client, policy, uniqueId('evaluate-digest')));
    expect(r.reason).toMatch(
      /^stage evaluate failed: model .*model\.onnx has SHA-256 [0-9a-f]{64}, but the policy pins f{64}$/,
    );
  }, 60_000);

  test('a hostile model file fails the stage with a clear error and leaves the worker running', async () => {
    const path = join(fx.dir, 'hostile.onnx');
    await writeFile(path, Buffer.concat([Buffer.from([0x08, 0x07, 0x12]), Buffer.alloc(64, 0xff)]));
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: path,
      extra: suite('  - { metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }'),
    });
    const r = await result(await startPipeline(stack.client, policy, uniqueId('evaluate-hostile')));
    expect(r.reason).toBe(
      // The wire check sees the producer name's length run past the file before anything is decoded.
      `stage evaluate failed: ${path}: not an ONNX model: the protobuf does not decode (ModelProto: invalid length encoding)`,
    );
    // The same in-process worker still serves the next pipeline.
    expect(stack.workers.every((w) => w.getState() === 'RUNNING')).toBe(true);
  }, 60_000);

  test('cancelling the pipeline kills the engine job', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: EXAMPLE,
      extra: suite(
        '  - { metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }',
        '    - { id: long, attack: pgd, eps: 0.1, steps: 500 }',
        10000,
      ),
    });
    const before = new Set(jobProcesses());
    const handle = await startPipeline(stack.client, policy, uniqueId('evaluate-cancel'));
    const job = await waitUntil('the engine job', () => jobProcesses().find((p) => !before.has(p)));
    await handle.cancel();
    await waitUntil('the engine job to exit', () => (alive(job) ? undefined : true), 20_000);
    await expect(handle.result()).rejects.toThrow(/cancel/i);
  }, 90_000);

  test('a worker killed with SIGKILL during an engine job leaves no engine process running', async () => {
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: EXAMPLE,
      extra: suite(
        '  - { metric: evaluate.clean_accuracy, op: ">=", value: 0.85 }',
        '    - { id: long, attack: pgd, eps: 0.1, steps: 500 }',
        10000,
      ),
    });
    const worker = await spawnWorker({
      TEMPORAL_ADDRESS: testAddress(),
      SECMLOPS_HOME: join(fx.dir, 'home-kill'),
      ...fx.env,
      SECMLOPS_WORKFLOW_BUNDLE: process.env.SECMLOPS_TEST_BUNDLE,
    });
    spawned.push(worker);
    // Only the spawned worker serves the gpu queue for this run: stop the in-process one.
    await stack.stop();
    const connection = await Connection.connect({ address: testAddress() });
    const client = new Client({ connection });
    const id = uniqueId('evaluate-kill');
    await startPipeline(client, policy, id);
    const children = () => childPids(worker.child.pid!);
    const job = await waitUntil(`an engine job under the worker; its output:\n${worker.output()}`, () => children()[0]);
    worker.child.kill('SIGKILL');
    await worker.exited;
    await waitUntil('the orphaned engine job to exit', () => (alive(job) ? undefined : true), 10_000);
    expect(alive(job)).toBe(false);
    await client.workflow.getHandle(id).terminate('test done');
    await connection.close();
    stack = await startStack(fx);
  }, 120_000);
});
