// The train stage on a real Temporal server: defended training in an engine job, resumable through a worker crash.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { join } from 'node:path';
import { LocalArtifactStore } from '../../activities/store.js';
import { decodePayloads } from '../../worker/connection.js';
import { stageWorkflowId } from '../../workflows/messages.js';
import { FASHION, makeFixture, sha256, testPolicy, type Fixture } from '../helpers/fixture.js';
import { recordHistories } from '../helpers/histories.js';
import { alive, childPids, spawnWorker, waitUntil, type WorkerProcess } from '../helpers/processes.js';
import { freePort, result, startPipeline, startStack, testAddress, uniqueId, type Stack } from '../helpers/temporal.js';
import { startDevServer } from '../../worker/dev-server.js';
import type { TrainHeartbeat } from '../../activities/train.js';

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

/** The example's training files plus the fixture's test split, all pinned. */
async function trainingPolicy(train: string, stages: string, extra = '') {
  const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'];
  const pinned = await Promise.all(files.map(async (f) => ({ path: f, sha256: await sha256(join(FASHION, f)) })));
  const { copyFile } = await import('node:fs/promises');
  for (const f of files) await copyFile(join(FASHION, f), join(fx.dataset, f));
  const test = await Promise.all(
    ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => ({
      path: f,
      sha256: await sha256(join(fx.dataset, f)),
    })),
  );
  return testPolicy(fx, { stages, files: [...pinned, ...test], trainSplit: true, extra: `train:\n${train}\n${extra}` });
}

async function heartbeat(client: Client, id: string): Promise<TrainHeartbeat | undefined> {
  const d = await client.workflow
    .getHandle(stageWorkflowId(id, 'train'))
    .describe()
    .catch(() => undefined);
  // Evidence-producing runs seal their heartbeat: { value, sig }.
  const sealed = (await decodePayloads(d?.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads))[0] as
    { value?: TrainHeartbeat } | undefined;
  return sealed?.value;
}

const NO_APPROVAL = '  - name: train\n    approval: false\n  - name: evaluate\n    approval: false';
const EVALUATE = 'evaluate:\n  limit: 200\n  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]';

describe('train stage', () => {
  test('trains with FGSM-RS and hands its model to evaluate', async () => {
    const policy = await trainingPolicy(
      '  arch: small-cnn\n  defense: { kind: fgsm-rs, eps: 0.1 }\n  epochs: 2\n  batch: 64\n  limit: 1024\n  checkpointEvery: 5',
      NO_APPROVAL,
      EVALUATE,
    );
    const id = uniqueId('train');
    const r = await result(await startPipeline(stack.client, policy, id));
    expect(r.state).toBe('passed');
    const [train, evaluate] = r.stages;
    expect(train.metrics['train.epochs']).toBe(2);
    expect(train.metrics['train.accuracy']).toBeGreaterThan(0.3);
    expect(train.artifacts.model).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(evaluate.artifacts.model).toBe(train.artifacts.model);
    expect(evaluate.metrics['evaluate.clean_accuracy']).toBeGreaterThan(0.3);
    // The final checkpoint is in the store, readable and digest-checked.
    await new LocalArtifactStore(fx.artifacts).get(train.artifacts.checkpoint);
    await recordHistories(stack.client, 'train', [id, stageWorkflowId(id, 'train')]);
  }, 120_000);

  test('a worker killed mid-training: the retry resumes from the heartbeated checkpoint and yields the same model', async () => {
    // A short heartbeat timeout: the server notices the dead worker within 15 s rather than the default minute.
    const train =
      '  arch: small-cnn\n  defense: { kind: pgd, eps: 0.1, steps: 3 }\n  epochs: 3\n  batch: 64\n  limit: 2048\n  checkpointEvery: 4\n  heartbeatTimeout: 15s';
    const policy = await trainingPolicy(train, '  - name: train\n    approval: false');
    // The same run without a crash, for comparison.
    const straight = await result(await startPipeline(stack.client, policy, uniqueId('train-straight')));
    await stack.stop();
    const env = {
      TEMPORAL_ADDRESS: testAddress(),
      SECMLOPS_HOME: join(fx.dir, 'home-train'),
      ...fx.env,
      SECMLOPS_WORKFLOW_BUNDLE: process.env.SECMLOPS_TEST_BUNDLE,
    };
    // Both workers share the fixture's artifact store, as compose workers share a volume.
    const shared = { ...env, SECMLOPS_HOME: fx.dir };
    const first = await spawnWorker(shared);
    spawned.push(first);
    const connection = await Connection.connect({ address: testAddress() });
    const client = new Client({ connection });
    const id = uniqueId('train-crash');
    const handle = await startPipeline(client, policy, id);
    const seen = await waitUntil('a checkpoint after the first epoch', async () => {
      const hb = await heartbeat(client, id);
      return hb?.checkpoint && hb.checkpoint.epoch >= 1 ? hb.checkpoint : undefined;
    });
    const orphans = childPids(first.child.pid!);
    expect(orphans.length).toBeGreaterThan(0);
    first.child.kill('SIGKILL');
    await first.exited;
    // The killed worker's engine job exits with it rather than writing on.
    await waitUntil('the engine job to exit', async () => (orphans.some(alive) ? undefined : true), 10_000);
    spawned.push(await spawnWorker(shared));
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const resumed = r.stages[0].findings.find((f) => f.startsWith('training resumed'));
    const m = /after epoch (\d+), step (\d+)/.exec(resumed ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1]) * 1000 + Number(m![2])).toBeGreaterThanOrEqual(seen.epoch * 1000 + seen.step);
    expect(r.stages[0].artifacts.model).toBe(straight.stages[0].artifacts.model);
    await connection.close();
    spawned.splice(0).forEach((w) => w.child.kill('SIGKILL'));
    stack = await startStack(fx);
  }, 240_000);

  test('a server restart mid-training: the run completes from its checkpoint', async () => {
    // Long enough that stopping the worker (10 s grace) interrupts it.
    const policy = await trainingPolicy(
      '  arch: small-cnn\n  defense: { kind: pgd, eps: 0.1, steps: 3 }\n  epochs: 8\n  batch: 64\n  limit: 4096\n  checkpointEvery: 4',
      '  - name: train\n    approval: false',
    );
    const dbFilename = join(fx.dir, 'restart.db');
    const port = await freePort();
    let server = await startDevServer({ dbFilename, port });
    let local = await startStack(fx, server.address);
    const id = uniqueId('train-restart');
    await startPipeline(local.client, policy, id);
    await waitUntil('a checkpoint', async () => (await heartbeat(local.client, id))?.checkpoint);
    await local.stop();
    await server.teardown();
    server = await startDevServer({ dbFilename, port });
    try {
      local = await startStack(fx, server.address);
      const r = await result(local.client.workflow.getHandle(id));
      expect(r.state).toBe('passed');
      expect(
        r.stages[0].findings.some((f) => /^training resumed from a checkpoint after epoch \d+, step \d+$/.test(f)),
      ).toBe(true);
      await local.stop();
    } finally {
      await server.teardown();
    }
  }, 240_000);

  test('cancelling stops the job and keeps the last checkpoint', async () => {
    const policy = await trainingPolicy(
      '  arch: small-cnn\n  defense: { kind: pgd, eps: 0.1, steps: 5 }\n  epochs: 50\n  batch: 64\n  limit: 2048\n  checkpointEvery: 2',
      '  - name: train\n    approval: false',
    );
    const id = uniqueId('train-cancel');
    const handle = await startPipeline(stack.client, policy, id);
    const ck = await waitUntil('a checkpoint', async () => (await heartbeat(stack.client, id))?.checkpoint);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow(/cancel/i);
    const bytes = await new LocalArtifactStore(fx.artifacts).get(ck.ref);
    expect(bytes.subarray(0, 15).toString()).toBe('SECMLOPS-CKPT-2');
  }, 120_000);
});
