// The dataset part of an engine job's request, the same for training and evaluation: the split's two files under
// the root, the digests they must have (the engine hashes each file as it reads it), the classes and the file cap.
import { join } from 'node:path';
import type { PairFiles } from '../engine/data/fashion.js';
import type { DatasetSplit } from '../policy/index.js';

export interface SplitInput {
  root: string;
  split: DatasetSplit;
  classes: number;
  /** The split's pinned digests: the engine hashes each file as it reads it and refuses one that changed. */
  pinned?: { images?: string; labels?: string };
  /** artifacts.dataset.maxFileBytes. */
  maxFileBytes?: number;
}

export function jobDataset(input: SplitInput): PairFiles & { classes: number } {
  return {
    images: join(input.root, input.split.images),
    labels: join(input.root, input.split.labels),
    ...(input.pinned?.images ? { imagesSha256: input.pinned.images } : {}),
    ...(input.pinned?.labels ? { labelsSha256: input.pinned.labels } : {}),
    classes: input.classes,
    ...(input.maxFileBytes ? { maxBytes: input.maxFileBytes } : {}),
  };
}
