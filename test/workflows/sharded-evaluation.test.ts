// Sharded evaluation on a real Temporal server: the evaluate stage splits its attack suite across parallel gpu
// activities by image ranges, merges their signed per-image values, and measures exactly what one activity does;
// workflow code an attacker drives cannot get a merge of parts that do not belong together.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { NativeConnection, Worker } from '@temporalio/worker';
import { resolve } from 'node:path';
import proto from '@temporalio/proto';
import { createWorkers } from '../../worker/workers.js';
import { GPU_TASK_QUEUE, stageWorkflowId } from '../../workflows/messages.js';
import { makeFixture, testPolicy, type Fixture } from '../helpers/fixture.js';
import { rogueShards } from '../helpers/rogue-workflows.js';
import { result, startPipeline, startStack, testAddress, uniqueId, type Stack } from '../helpers/temporal.js';

const EXAMPLE = resolve('examples/fashion-mnist/model.onnx');
let fx: Fixture;
let stack: Stack;

beforeAll(async () => {
  fx = await makeFixture();
  stack = await startStack(fx);
});
afterAll(async () => stack?.stop());

const ATTACKS =
  '    - { id: fgsm, attack: fgsm, eps: 0.05 }\n    - { id: pgd, attack: pgd, eps: 0.1, steps: 3, restarts: 2 }';
const policyWith = (shards: number | 'auto') =>
  testPolicy(fx, {
    stages: '  - name: evaluate\n    approval: false\n  - name: release\n    approval: false',
    model: EXAMPLE,
    extra: `evaluate:\n  limit: 600\n  shards: ${shards}\n  safetyCritical: [6]\n  attacks:\n${ATTACKS}`,
  });

describe('sharded evaluation', () => {
  test('three parts in parallel measure what one activity measures, and the release attests it', async () => {
    const [one, three] = await Promise.all([
      result(await startPipeline(stack.client, await policyWith(1), uniqueId('shards-1'))),
      result(await startPipeline(stack.client, await policyWith(3), uniqueId('shards-3'))),
    ]);
    expect(one.state).toBe('passed');
    expect(three.state).toBe('passed');
    const [a, b] = [one.stages[0], three.stages[0]];
    expect(b.metrics).toEqual(a.metrics);
    expect(b.metrics['evaluate.images']).toBe(600);
    expect(b.metrics['evaluate.pgd.robust_accuracy']).toBeLessThan(b.metrics['evaluate.clean_accuracy']);
    // Three evaluateShard activities and one merge ran in the stage's workflow.
    const history = await stack.client.workflow.getHandle(stageWorkflowId(three.workflowId, 'evaluate')).fetchHistory();
    const scheduled = (history.events ?? [])
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    expect(scheduled).toEqual(['evaluateShard', 'evaluateShard', 'evaluateShard', 'mergeEvaluation']);
    expect(three.stages[1].artifacts.attestation).toMatch(/^sha256:/);
  }, 240_000);

  test('shards: auto cuts one part per gpu worker polling the gpu queue', async () => {
    // A second gpu worker under its own identity, as another host would be.
    const native = await NativeConnection.connect({ address: testAddress() });
    const [second] = await createWorkers({
      connection: native,
      namespace: 'default',
      queues: ['gpu'],
      identity: 'second-gpu-host',
      artifactsDir: fx.artifacts,
      releaseKeyPath: fx.key('release'),
      trust: fx.trust,
    });
    const running = second.run();
    try {
      // The server lists a poller once it has polled; wait until both identities are there.
      for (let i = 0; i < 100; i++) {
        const r = await stack.client.workflowService.describeTaskQueue({
          namespace: 'default',
          taskQueue: { name: GPU_TASK_QUEUE },
          taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        });
        if (new Set((r.pollers ?? []).map((p) => p.identity)).size >= 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const [one, auto] = await Promise.all([
        result(await startPipeline(stack.client, await policyWith(1), uniqueId('shards-1'))),
        result(await startPipeline(stack.client, await policyWith('auto'), uniqueId('shards-auto'))),
      ]);
      expect(auto.state).toBe('passed');
      expect(auto.stages[0].metrics).toEqual(one.stages[0].metrics);
      const history = await stack.client.workflow
        .getHandle(stageWorkflowId(auto.workflowId, 'evaluate'))
        .fetchHistory();
      const scheduled = (history.events ?? [])
        .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
        .filter(Boolean);
      expect(scheduled[0]).toBe('countGpuWorkers');
      const parts = scheduled.filter((n) => n === 'evaluateShard').length;
      expect(parts).toBeGreaterThanOrEqual(2);
      expect(scheduled).toEqual(['countGpuWorkers', ...Array<string>(parts).fill('evaluateShard'), 'mergeEvaluation']);
    } finally {
      second.shutdown();
      await running.catch(() => undefined);
      await native.close();
    }
  }, 240_000);

  test('workflow code an attacker drives cannot merge parts of another suite, a repeated part or foreign parts', async () => {
    const native = await NativeConnection.connect({ address: testAddress() });
    const rogue = await Worker.create({
      connection: native,
      taskQueue: 'rogue',
      workflowsPath: resolve('test/helpers/rogue-workflows.ts'),
    });
    try {
      const policy = await policyWith(2);
      const dataset = policy.artifacts.dataset!;
      const split = dataset.splits.test;
      const request = {
        modelPath: EXAMPLE,
        root: dataset.root,
        split,
        classes: dataset.classes,
        config: { ...policy.evaluate!, limit: 300 },
        evidence: {
          pipelineId: 'rogue',
          stage: 'evaluate' as const,
          subjectDigest: 'a'.repeat(64),
          policyDigest: 'b'.repeat(64),
        },
        pinned: {
          images: dataset.files.find((f) => f.path === split.images)!.sha256,
          labels: dataset.files.find((f) => f.path === split.labels)!.sha256,
        },
      };
      const run = (foreign?: unknown) =>
        stack.client.workflow.execute(rogueShards, {
          taskQueue: 'rogue',
          workflowId: uniqueId('rogue-shards'),
          args: [request, foreign as never],
        });
      // One worker run for both workflows (a worker runs once).
      const [first, second] = await rogue.runUntil(async () => {
        const first = await run();
        // The same parts handed to another workflow's merge: bound to the workflow they were measured for.
        return [first, await run(first[4])];
      });
      expect(first.slice(0, 4)).toEqual([
        expect.stringContaining('part 2 of 2 followed another evaluate block'),
        expect.stringContaining('part 2 of 2 is part 0 of 2: repeated'),
        expect.stringContaining('1 parts given, the policy asks for 2'),
        'ok',
      ]);
      expect(second[3]).toEqual(expect.stringContaining('part 1 of 2 was measured for another workflowId'));
      expect(second[4]).toBe('ok');
    } finally {
      await native.close();
    }
  }, 240_000);
});
