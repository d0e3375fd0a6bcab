import { Context } from '@temporalio/activity';
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
  const ctx = Context.current();
  const reports: SplitReport[] = [];
  for (const [split, files] of Object.entries(input.splits)) {
    try {
      ctx.heartbeat({ split, step: 'reading images' });
      const images = await readIdx(join(input.root, files.images));
      ctx.heartbeat({ split, step: 'reading labels' });
      const labels = await readIdx(join(input.root, files.labels));
      ctx.heartbeat({ split, step: 'checking' });
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
