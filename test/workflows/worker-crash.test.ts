// A worker killed with SIGKILL mid-manifest: the retry on a new worker resumes from the last heartbeat.
import { afterAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodePayloads } from '../../worker/connection.js';
import { stageWorkflowId } from '../../workflows/messages.js';
import { TEST_FILES, makeFixture, sha256, testPolicy } from '../helpers/fixture.js';
import { result, startPipeline, testAddress, uniqueId } from '../helpers/temporal.js';
import { spawnWorker, type WorkerProcess } from '../helpers/processes.js';

const FILES = 320;
const SIZE = 16 << 20;
const spawned: WorkerProcess[] = [];
afterAll(() => spawned.forEach((w) => w.child.kill('SIGKILL')));

describe('worker crash', () => {
  test('SIGKILL during the manifest activity: a new worker resumes after the files already hashed', async () => {
    const fx = await makeFixture();
    // Sparse files: large to hash, nothing on disk.
    for (let i = 0; i < FILES; i++) {
      const path = join(fx.dataset, `shard-${String(i).padStart(3, '0')}.bin`);
      await writeFile(path, '');
      await truncate(path, SIZE);
    }
    const zeros = await sha256(join(fx.dataset, 'shard-000.bin'));
    const files = [
      ...Array.from({ length: FILES }, (_, i) => ({ path: `shard-${String(i).padStart(3, '0')}.bin`, sha256: zeros })),
      ...(await Promise.all(TEST_FILES.map(async (f) => ({ path: f, sha256: await sha256(join(fx.dataset, f)) })))),
    ];
    const policy = await testPolicy(fx, { stages: '  - name: data\n    approval: false', files });
    const env = {
      TEMPORAL_ADDRESS: testAddress(),
      SECMLOPS_HOME: join(fx.dir, 'home'),
      ...fx.env,
      SECMLOPS_WORKFLOW_BUNDLE: process.env.SECMLOPS_TEST_BUNDLE,
    };
    const first = await spawnWorker(env);
    spawned.push(first);

    const connection = await Connection.connect({ address: testAddress() });
    const client = new Client({ connection });
    const id = uniqueId('crash');
    const handle = await startPipeline(client, policy, id);
    const stage = client.workflow.getHandle(stageWorkflowId(id, 'data'));
    let doneAtKill = 0;
    const until = Date.now() + 60_000;
    while (doneAtKill < 20) {
      if (Date.now() > until)
        throw new Error(`no heartbeat with 20 files within 60 s; worker output:\n${first.output()}`);
      const d = await stage.describe().catch(() => undefined);
      // Evidence-producing runs seal their heartbeat: { value, sig }.
      const sealed = (await decodePayloads(d?.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads))[0] as
        { value?: { done?: unknown[] } } | undefined;
      const details = sealed?.value;
      doneAtKill = details?.done?.length ?? 0;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(doneAtKill).toBeLessThan(FILES);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();

    spawned.push(await spawnWorker(env));
    const r = await result(handle);
    expect(r.state).toBe('passed');
    const data = r.stages[0];
    expect(data.metrics['data.manifest.attempt']).toBeGreaterThanOrEqual(2);
    expect(data.metrics['data.manifest.resumed_from']).toBeGreaterThanOrEqual(doneAtKill);
    expect(data.manifest).toHaveLength(FILES + 2);
    expect(data.findings[0]).toMatch(/^the manifest resumed after \d+ files hashed by an earlier attempt/);
    await connection.close();
  }, 180_000);
});
