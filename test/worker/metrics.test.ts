// A worker's Prometheus endpoint (SECMLOPS_METRICS_ADDRESS): after an evaluate stage runs on it and is approved,
// /metrics holds the SDK's own metrics and the project's: the engine's images/s and jobs, and the approval's wait.
import { afterAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { sendDecision } from '../../client/decisions.js';
import { makeFixture, testPolicy } from '../helpers/fixture.js';
import { spawnWorker, type WorkerProcess } from '../helpers/processes.js';
import { result, startPipeline, testAddress, uniqueId, waitForStage } from '../helpers/temporal.js';

const spawned: WorkerProcess[] = [];
afterAll(() => spawned.forEach((w) => w.child.kill('SIGKILL')));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe('worker metrics', () => {
  test('an evaluated, approved stage shows in the SDK metrics, the engine gauges and the approval wait', async () => {
    const fx = await makeFixture();
    const address = `127.0.0.1:${await freePort()}`;
    const worker = await spawnWorker({
      TEMPORAL_ADDRESS: testAddress(),
      SECMLOPS_HOME: join(fx.dir, 'home'),
      ...fx.env,
      SECMLOPS_WORKFLOW_BUNDLE: process.env.SECMLOPS_TEST_BUNDLE,
      SECMLOPS_METRICS_ADDRESS: address,
    });
    spawned.push(worker);
    expect(worker.output()).toContain(`Prometheus metrics on http://${address}/metrics`);
    const policy = await testPolicy(fx, {
      stages: '  - evaluate',
      model: resolve('examples/fashion-mnist/model.onnx'),
      extra: 'evaluate:\n  limit: 100\n  attacks:\n    - { id: fgsm, attack: fgsm, eps: 0.1 }\ngates: []',
    });
    const client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
    const id = uniqueId('metrics');
    const handle = await startPipeline(client, policy, id);
    await waitForStage(handle, 'evaluate', ['waiting'], 120_000);
    await sendDecision(client, {
      workflowId: id,
      stage: 'evaluate',
      person: 'alice',
      decision: 'approve',
      keyPath: fx.key('cli'),
    });
    expect((await result(handle)).state).toBe('passed');
    // The SDK exports on its own schedule: poll until the approval's sample is there.
    let text = '';
    const until = Date.now() + 30_000;
    while (!/secmlops_approval_wait\w*_count\{[^}]*stage="evaluate"/.test(text) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 500));
      text = await fetch(`http://${address}/metrics`).then((r) => r.text());
    }
    expect(text).toMatch(/secmlops_approval_wait_seconds_count\{[^}]*outcome="approved"[^}]*\} 1/);
    // Buckets for minutes to days, not the default's milliseconds.
    expect(text).toMatch(/secmlops_approval_wait_seconds_bucket\{[^}]*le="604800"\} 1/);
    expect(text).toMatch(/secmlops_engine_jobs_total\{[^}]*job="evaluate"[^}]*outcome="completed"[^}]*\} 1/);
    const speed = /secmlops_engine_images_per_second\{[^}]*job="evaluate"[^}]*\} ([0-9.e+]+)/.exec(text);
    expect(Number(speed?.[1])).toBeGreaterThan(0);
    // The SDK's own: activity latencies and workflow task latencies, by task queue.
    expect(text).toMatch(/temporal_activity_execution_latency_seconds_count\{[^}]*task_queue="gpu"/);
    expect(text).toMatch(/temporal_workflow_task_schedule_to_start_latency_seconds_count/);
  }, 180_000);
});
