import { ApplicationFailure } from '@temporalio/common';
import { join } from 'node:path';
import { DatasetError, checkPair, classCounts, pixelStats, readIdx } from '../engine/data/idx.js';
import type { DatasetSplit } from '../policy/index.js';
import type { SplitReport } from '../workflows/messages.js';

export interface ValidateInput {
  root: string;
  splits: Record<string, DatasetSplit>;
  classes: number;
}

/** IDX structure, agreeing counts, label range, pixel statistics and class balance for every split. */
export async function validateDataset(input: ValidateInput): Promise<SplitReport[]> {
  const reports: SplitReport[] = [];
  for (const [split, files] of Object.entries(input.splits)) {
    try {
      const images = await readIdx(join(input.root, files.images));
      const labels = await readIdx(join(input.root, files.labels));
      const pair = checkPair(images, labels, files, input.classes);
      const px = pixelStats(pair.images);
      reports.push({
        split,
        images: pair.count,
        rows: pair.rows,
        cols: pair.cols,
        classCounts: classCounts(pair.labels, input.classes),
        pixelMean: px.mean,
        pixelStd: px.std,
        pixelMin: px.min,
        pixelMax: px.max,
      });
    } catch (e) {
      // Bad data does not get better on retry.
      if (e instanceof DatasetError) throw ApplicationFailure.nonRetryable(`split ${split}: ${e.message}`, 'InvalidDataset');
      throw e;
    }
  }
  return reports;
}
