// The policy's artifacts.dataset.maxFileBytes reaches the data stage's validation: a file over it is refused with
// the cap named, and the default still reads the real Fashion-MNIST test split.
import { describe, expect, test } from '@jest/globals';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { validateDataset, type ValidateInput } from '../../activities/dataset.js';
import type { EvidenceSigner } from '../../activities/evidence.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const input: ValidateInput = {
  root: FASHION,
  splits: { test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' } },
  classes: 10,
};
// No evidence is asked for, so the signer is never called.
const noSigner = (): Promise<EvidenceSigner> => Promise.reject(new Error('no signer in this test'));
const validate = (i: ValidateInput): ReturnType<typeof validateDataset> =>
  new MockActivityEnvironment().run(validateDataset, noSigner, i);

describe('artifacts.dataset.maxFileBytes in the data stage', () => {
  test('the default reads the 7.8 MB test images', async () => {
    expect((await validate(input)).splits[0]).toMatchObject({ split: 'test', images: 10000 });
  });

  test('a lower cap refuses them, naming the file and the cap', async () => {
    await expect(validate({ ...input, maxFileBytes: 1_000_000 })).rejects.toThrow(
      /split test: .*t10k-images-idx3-ubyte\.gz: .*1,000,000/,
    );
  });
});

describe('a split checked once is recognised by its digests', () => {
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  test('the same bytes give the same report; changed bytes are read and judged again', async () => {
    const root = await mkdtemp(join(tmpdir(), 'secmlops-dataset-'));
    try {
      for (const f of [input.splits.test.images, input.splits.test.labels])
        await copyFile(join(FASHION, f), join(root, f));
      const first = await validate({ ...input, root });
      const env = new MockActivityEnvironment();
      const steps: string[] = [];
      env.on('heartbeat', (d: { step: string }) => steps.push(d.step));
      const again = await env.run(validateDataset, noSigner, { ...input, root });
      expect(again).toEqual(first);
      expect(steps).toEqual(['hashing']);
      // One label out of range under the same file name: a cached report must not hide it.
      const labels = gunzipSync(await readFile(join(root, 't10k-labels-idx1-ubyte.gz')));
      labels[8 + 17] = 10;
      await writeFile(join(root, 't10k-labels-idx1-ubyte.gz'), gzipSync(labels));
      await expect(validate({ ...input, root })).rejects.toThrow(/split test: .*label/);
      // A pinned digest is checked on the cached path too.
      const images = await readFile(join(root, 't10k-images-idx3-ubyte.gz'));
      labels[8 + 17] = 9;
      const fixed = gzipSync(labels);
      await writeFile(join(root, 't10k-labels-idx1-ubyte.gz'), fixed);
      const pinned = [
        { path: 't10k-images-idx3-ubyte.gz', sha256: sha(images) },
        { path: 't10k-labels-idx1-ubyte.gz', sha256: sha(fixed) },
      ];
      const ok = await validate({ ...input, root, pinned });
      expect(ok.dataset).toEqual(pinned);
      expect(ok.splits[0].classCounts[9]).toBe(first.splits[0].classCounts[9] + 1);
      await expect(
        validate({ ...input, root, pinned: [pinned[0], { ...pinned[1], sha256: 'f'.repeat(64) }] }),
      ).rejects.toThrow(/split test: .*t10k-labels-idx1-ubyte\.gz.*(digest|sha)/i);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
