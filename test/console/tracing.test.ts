// The console's traces: a decision sent from the console is one trace from its HTTP request, through the client's
// Update, to the stage workflow's handler on a traced worker process; a traceparent sent by the browser is ignored.
import { afterAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { join } from 'node:path';
import { loadPrivateKey, loadPublicKey } from '../../activities/keys.js';
import { openOnceStore } from '../../client/once-store.js';
import { createConsole } from '../../console/server.js';
import { issueToken } from '../../console/tokens.js';
import { clientTracingFromEnv } from '../../worker/tracing.js';
import { makeFixture, testPolicy } from '../helpers/fixture.js';
import { collector, spawnTracedWorker } from '../helpers/otlp.js';
import type { WorkerProcess } from '../helpers/processes.js';
import { startPipeline, testAddress, uniqueId, waitForStage } from '../helpers/temporal.js';

const spawned: WorkerProcess[] = [];
afterAll(() => spawned.forEach((w) => w.child.kill('SIGKILL')));

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

describe('console tracing', () => {
  test('a console decision is one trace: the request, its Update, the workflow’s handler on the worker', async () => {
    const otlp = await collector();
    const fx = await makeFixture();
    const worker = await spawnTracedWorker(fx, otlp, 'worker-under-test');
    spawned.push(worker);
    // The exporter and batch processor read process.env, as in a console process started with these variables.
    const saved = { ...process.env };
    Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '200' });
    const tracing = clientTracingFromEnv({ ...process.env, OTEL_SERVICE_NAME: '' });
    process.env = saved;
    expect(tracing).toBeDefined();
    const connection = await Connection.connect({ address: testAddress() });
    const traced = new Client({ connection, interceptors: tracing!.clientInterceptors });
    const app = createConsole({
      connect: async () => traced,
      tracer: tracing!.tracer,
      tokenPublicKey: await loadPublicKey(`${fx.keys}/token.pub`),
      consoleKey: await loadPrivateKey(fx.key('console')),
      state: openOnceStore(join(fx.dir, 'console-state.sqlite'), 'TEST_STATE'),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const policy = await testPolicy(fx, {
        stages: '  - name: plan\n    approval: { roles: [R3] }\n  - name: data\n    approval: false',
        consoleChannel: true,
      });
      const id = uniqueId('traced-console');
      const handle = await startPipeline(new Client({ connection }), policy, id);
      await waitForStage(handle, 'plan', ['waiting']);

      const token = issueToken('alice', 3600_000, await loadPrivateKey(fx.key('token')));
      const signin = await fetch(`${url}/signin`, {
        method: 'POST',
        body: new URLSearchParams({ token }),
        redirect: 'manual',
      });
      const cookie = signin.headers.get('set-cookie')!.split(';')[0];
      // A browser (or anyone) can send a traceparent: the console starts its own trace regardless.
      const foreign = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      const page = await (await fetch(`${url}/pipelines/${id}`, { headers: { cookie, traceparent: foreign } })).text();
      const decided = await fetch(`${url}/pipelines/${id}/stages/plan/decision`, {
        method: 'POST',
        headers: { cookie, traceparent: foreign },
        body: new URLSearchParams({
          csrf: hidden(page, 'csrf'),
          subject: hidden(page, 'subject'),
          decision: 'approve',
          comment: '',
        }),
      });
      expect(await decided.text()).toContain('Your approval was accepted');
      await tracing!.shutdown();

      const request = await otlp.waitFor('POST /pipelines/:id/stages/:stage/decision');
      const handled = await otlp.waitFor(/^HandleUpdate:/);
      expect(request && handled).toBeTruthy();
      expect(request!.service).toBe('secmlops-console');
      expect(request!.parentSpanId ?? '').toBe('');
      expect(request!.traceId).not.toBe('0af7651916cd43dd8448eb211c80319c');
      // The client's Update is the request's child; the workflow's handler, on the worker, is in the same trace.
      const update = otlp.spans.find(
        (s) => s.name.startsWith('StartWorkflowUpdate:') && s.traceId === request!.traceId,
      );
      expect(update?.parentSpanId).toBe(request!.spanId);
      const inWorker = otlp.spans.filter((s) => s.traceId === request!.traceId && s.service === 'worker-under-test');
      expect(inWorker.map((s) => s.name)).toContain(handled!.name);
      // The page's queries are the page request's children, in a trace of its own.
      const view = otlp.spans.find((s) => s.name === 'GET /pipelines/:id');
      expect(view?.traceId).not.toBe(request!.traceId);
      expect(otlp.spans.some((s) => s.name.startsWith('QueryWorkflow:') && s.parentSpanId === view?.spanId)).toBe(true);
      expect(otlp.spans.every((s) => !s.name.includes(id))).toBe(true);
    } finally {
      await app.close();
      await connection.close();
      otlp.close();
    }
  }, 180_000);
});
