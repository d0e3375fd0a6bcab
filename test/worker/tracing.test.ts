// OpenTelemetry traces from a `secmlops worker` process configured by the standard OTEL variables: a pipeline's
// workflow, its stage's child workflow and their activities arrive at an OTLP/HTTP receiver as one trace.
import { afterAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { makeFixture, testPolicy } from '../helpers/fixture.js';
import { collector, spawnTracedWorker } from '../helpers/otlp.js';
import type { WorkerProcess } from '../helpers/processes.js';
import { result, startPipeline, testAddress, uniqueId } from '../helpers/temporal.js';

const spawned: WorkerProcess[] = [];
afterAll(() => spawned.forEach((w) => w.child.kill('SIGKILL')));

describe('worker tracing', () => {
  test('a pipeline, its data stage and their activities form one trace at the OTLP endpoint', async () => {
    const otlp = await collector();
    try {
      const fx = await makeFixture();
      // No prebuilt bundle: the worker bundles the workflows with the tracing interceptors at start.
      const worker = await spawnTracedWorker(fx, otlp, 'secmlops-worker-test');
      spawned.push(worker);
      expect(worker.output()).toContain('OpenTelemetry traces on');
      const policy = await testPolicy(fx, { stages: '  - name: data\n    approval: false' });
      const client = new Client({ connection: await Connection.connect({ address: testAddress() }) });
      const r = await result(await startPipeline(client, policy, uniqueId('traced')));
      expect(r.state).toBe('passed');
      const until = Date.now() + 30_000;
      const named = (n: string) => otlp.spans.find((s) => s.name === n);
      while (!(named('RunWorkflow:secmlopsPipeline') && named('RunActivity:hashDatasetFiles')) && Date.now() < until)
        await new Promise((res) => setTimeout(res, 250));
      const pipeline = named('RunWorkflow:secmlopsPipeline');
      const stage = named('RunWorkflow:dataStage');
      const manifest = named('RunActivity:hashDatasetFiles');
      const resolve = named('RunActivity:resolveStart');
      expect(pipeline && stage && manifest && resolve).toBeTruthy();
      // One trace: the stage's child workflow and the activities of both descend from the pipeline's run.
      for (const s of [stage!, manifest!, resolve!]) expect(s.traceId).toBe(pipeline!.traceId);
      // The activity's run is the child of the workflow's scheduling of it (context carried in the task's headers).
      expect(manifest!.parentSpanId).toBe(named('StartActivity:hashDatasetFiles')!.spanId);
      expect(otlp.services).toEqual(new Set(['secmlops-worker-test']));
    } finally {
      otlp.close();
    }
  }, 180_000);
});
