// The policy's artifacts.dataset.maxFileBytes reaches the data stage's validation: a file over it is refused with
// the cap named, and the default still reads the real Fashion-MNIST test split.
import { describe, expect, test } from '@jest/globals';
import { MockActivityEnvironment } from '@temporalio/testing';
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
