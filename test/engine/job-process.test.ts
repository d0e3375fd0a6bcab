// Engine jobs run in a child process whose working directory is an empty folder of its own, so relative paths
// inside a model (external data, which onnxruntime resolves against it) find nothing to read; the request's own
// paths are made absolute first, and the folder is removed when the job ends.
import { describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { runJob } from '../../engine/jobs/run-job.js';
import { saveModel } from '../../engine/onnx/model.js';
import { Rng } from '../../engine/runtime/rng.js';
import { deployableModel, initWeights, smallCnn } from '../../engine/train/zoo.js';

const FASHION = '/usr/share/datasets/fashion-mnist';

/** An untrained small CNN written under the working directory, which the job process does not share. */
async function untrainedModel() {
  const dir = await mkdtemp(join(process.cwd(), '.secmlops', 'job-test-'));
  const bytes = saveModel(deployableModel(smallCnn, initWeights(smallCnn, new Rng(1))));
  const modelPath = join(dir, 'model.onnx');
  await writeFile(modelPath, bytes);
  return { dir, bytes, modelPath };
}

describe('engine job process', () => {
  test('runs in an empty working directory of its own, with the request paths made absolute', async () => {
    const { dir, bytes, modelPath } = await untrainedModel();
    let seen: { cwd: string; entries: string[] } | undefined;
    const result = await runJob(
      {
        kind: 'evaluate',
        // Relative to this process's working directory, which the job does not share.
        modelPath: relative(process.cwd(), modelPath),
        modelSha256: createHash('sha256').update(bytes).digest('hex'),
        images: join(FASHION, 't10k-images-idx3-ubyte.gz'),
        labels: join(FASHION, 't10k-labels-idx1-ubyte.gz'),
        classes: 10,
        limit: 20,
        range: [0, 1],
        seed: 1,
        attacks: [{ id: 'fgsm', attack: 'fgsm', eps: 0.1 }],
      },
      {
        onStart: (pid) => {
          const cwd = readlinkSync(`/proc/${pid}/cwd`);
          seen = { cwd, entries: readdirSync(cwd) };
        },
      },
    );
    expect(result.images).toBe(20);
    expect(seen!.cwd).toMatch(/\/secmlops-job-[^/]+$/);
    expect(seen!.entries).toEqual([]);
    expect(existsSync(seen!.cwd)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  test("applies the policy's model limits, and a model over them is a permanent failure naming the limit", async () => {
    const { dir, bytes, modelPath } = await untrainedModel();
    const job = runJob({
      kind: 'evaluate',
      modelPath,
      modelSha256: createHash('sha256').update(bytes).digest('hex'),
      images: join(FASHION, 't10k-images-idx3-ubyte.gz'),
      labels: join(FASHION, 't10k-labels-idx1-ubyte.gz'),
      classes: 10,
      limit: 20,
      range: [0, 1],
      seed: 1,
      attacks: [],
      modelLimits: { maxNodes: 3 },
    });
    await expect(job).rejects.toMatchObject({ permanent: true });
    await expect(job).rejects.toThrow(/nodes \(local functions expanded\), over the limit of 3 \(maxNodes/);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);
});
