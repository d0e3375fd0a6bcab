// Workers on two hosts share artifacts through an S3-compatible bucket: the gpu worker trains and evaluates, the cpu
// worker (another home folder, another local cache) signs the release over the model it reads from the bucket.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Client, Connection } from '@temporalio/client';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { S3ArtifactStore } from '../../engine/io/s3-artifact-store.js';
import { FASHION, makeFixture, sha256, testPolicy, type Fixture } from '../helpers/fixture.js';
import { spawnWorker, type WorkerProcess } from '../helpers/processes.js';
import { startS3Server, type S3Server } from '../helpers/s3-server.js';
import { result, startPipeline, testAddress, uniqueId } from '../helpers/temporal.js';

let fx: Fixture;
let s3: S3Server;
const spawned: WorkerProcess[] = [];
beforeAll(async () => {
  fx = await makeFixture();
  s3 = await startS3Server('shared-artifacts');
}, 60_000);
afterAll(async () => {
  spawned.forEach((w) => w.child.kill('SIGKILL'));
  await s3?.stop();
});

describe('S3 artifact store across workers', () => {
  test('train on one worker, release on another: the model crosses hosts through the bucket', async () => {
    const files = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'];
    for (const f of files) await copyFile(join(FASHION, f), join(fx.dataset, f));
    const pinned = await Promise.all(
      [...files, 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map(async (f) => ({
        path: f,
        sha256: await sha256(join(fx.dataset, f)),
      })),
    );
    const policy = await testPolicy(fx, {
      stages: ['train', 'evaluate', 'release'].map((s) => `  - name: ${s}\n    approval: false`).join('\n'),
      files: pinned,
      trainSplit: true,
      extra:
        'train:\n  arch: mlp\n  epochs: 1\n  batch: 64\n  limit: 1024\n' +
        'evaluate:\n  limit: 100\n  attacks: [{ id: fgsm, attack: fgsm, eps: 0.1 }]',
    });
    const env = (home: string) => ({
      TEMPORAL_ADDRESS: testAddress(),
      SECMLOPS_HOME: join(fx.dir, home),
      ...fx.env,
      ...s3.env,
      SECMLOPS_ARTIFACTS: `s3://${s3.bucket}/pipelines`,
      SECMLOPS_WORKFLOW_BUNDLE: process.env.SECMLOPS_TEST_BUNDLE,
    });
    spawned.push(await spawnWorker(env('host-cpu'), 'cpu'), await spawnWorker(env('host-gpu'), 'gpu'));
    const connection = await Connection.connect({ address: testAddress() });
    const client = new Client({ connection });
    const r = await result(await startPipeline(client, policy, uniqueId('s3')));
    await connection.close();
    expect(r.state).toBe('passed');
    const [train, , release] = r.stages;
    const model = train.artifacts.model.replace('sha256:', '');
    // Every artifact is in the bucket, and each host's cache holds only what it handled.
    const bucket = new S3ArtifactStore(
      { bucket: s3.bucket, prefix: 'pipelines' },
      { client: s3.client, cacheDir: join(fx.dir, 'reader') },
    );
    for (const ref of [train.artifacts.model, train.artifacts.checkpoint, release.artifacts.attestation])
      expect((await bucket.get(ref)).length).toBeGreaterThan(0);
    const cached = async (home: string) =>
      readdir(join(fx.dir, home, 'artifacts', 'sha256', model.slice(0, 2))).catch(() => [] as string[]);
    expect(await cached('host-gpu')).toContain(model);
    // The cpu host read the model from the bucket to check it before signing: now cached there too.
    expect(await cached('host-cpu')).toContain(model);
    const attestation = release.artifacts.attestation.replace('sha256:', '');
    expect(
      await readdir(join(fx.dir, 'host-gpu', 'artifacts', 'sha256', attestation.slice(0, 2))).catch(() => []),
    ).not.toContain(attestation);
  }, 240_000);
});
