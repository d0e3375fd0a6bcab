// The dev server stops while a pipeline waits for approval; it comes back on the same SQLite file and the pipeline completes.
import { describe, expect, test } from '@jest/globals';
import { join } from 'node:path';
import { sendDecision } from '../../client/decisions.js';
import { startDevServer } from '../../worker/dev-server.js';
import { makeFixture, testPolicy } from '../helpers/fixture.js';
import { recordHistories } from '../helpers/histories.js';
import { freePort, result, startPipeline, startStack, uniqueId, waitForStage } from '../helpers/temporal.js';

describe('server restart', () => {
  test('an approval given after the server restarts on the same database completes the pipeline', async () => {
    const fx = await makeFixture();
    const policy = await testPolicy(fx, { stages: '  - plan\n  - data' });
    const dbFilename = join(fx.dir, 'temporal.db');
    const port = await freePort();
    const id = uniqueId('restart');

    let server = await startDevServer({ dbFilename, port });
    let stack = await startStack(fx, server.address);
    const handle = await startPipeline(stack.client, policy, id);
    await waitForStage(handle, 'plan', ['waiting']);
    await stack.stop();
    await server.teardown();

    server = await startDevServer({ dbFilename, port });
    try {
      stack = await startStack(fx, server.address);
      const again = stack.client.workflow.getHandle(id);
      await sendDecision(stack.client, {
        workflowId: id,
        stage: 'plan',
        person: 'alice',
        decision: 'approve',
        comment: 'after restart',
        keyPath: fx.key('cli'),
      });
      await waitForStage(again, 'data', ['waiting']);
      await sendDecision(stack.client, {
        workflowId: id,
        stage: 'data',
        person: 'dana',
        decision: 'approve',
        keyPath: fx.key('cli'),
      });
      const r = await result(again);
      expect(r.state).toBe('passed');
      expect(r.audit.filter((a) => a.kind === 'decision').map((a) => `${a.stage}:${a.person}:${a.comment}`)).toEqual([
        'plan:alice:after restart',
        'data:dana:',
      ]);
      await recordHistories(stack.client, 'restart', [id, `${id}/plan`, `${id}/data`]);
    } finally {
      await stack.stop();
      await server.teardown();
    }
  }, 120_000);
});
