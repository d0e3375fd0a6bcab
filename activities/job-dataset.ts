// The dataset part of an engine job's request, the same for training, evaluation and sanitisation: the split's two
// files under the root (or, after the data stage sanitised it, its copy in the artifact store), the digests they
// must have (the engine hashes each file as it reads it), the classes and the file cap.
import { join } from 'node:path';
import type { PairFiles } from '../engine/data/fashion.js';
import { sanitisedPath, type DatasetSplit, type FileDigest } from '../policy/index.js';
import type { ArtifactStore } from './store.js';

export interface SplitInput {
  root: string;
  split: DatasetSplit;
  classes: number;
  /** The split's pinned digests: the engine hashes each file as it reads it and refuses one that changed. */
  pinned?: { images?: string; labels?: string };
  /** artifacts.dataset.maxFileBytes. */
  maxFileBytes?: number;
  /** The data stage's sanitised copy of the split (artifact references from its signed result): read instead. */
  sanitised?: { images: string; labels: string };
}

const digestOf = (ref: string) => ref.replace(/^sha256:/, '');

export async function jobDataset(
  input: SplitInput,
  store?: Pick<ArtifactStore, 'localPath'>,
): Promise<PairFiles & { classes: number }> {
  const common = { classes: input.classes, ...(input.maxFileBytes ? { maxBytes: input.maxFileBytes } : {}) };
  if (input.sanitised) {
    if (!store) throw new Error('a sanitised split is read from the artifact store, and none was given');
    const [images, labels] = [digestOf(input.sanitised.images), digestOf(input.sanitised.labels)];
    // localPath refuses anything but a digest (a remote store downloads it, checked); the engine then checks the
    // bytes against it again while reading.
    return {
      images: await store.localPath(images),
      labels: await store.localPath(labels),
      imagesSha256: images,
      labelsSha256: labels,
      ...common,
    };
  }
  return {
    images: join(input.root, input.split.images),
    labels: join(input.root, input.split.labels),
    ...(input.pinned?.images ? { imagesSha256: input.pinned.images } : {}),
    ...(input.pinned?.labels ? { labelsSha256: input.pinned.labels } : {}),
    ...common,
  };
}

/**
 * The two files a job read, with the digests the engine checked them against while reading, for evidence: the
 * pinned originals, or the sanitised copy (named `<file>#sanitised`). Evidence runs refuse to start without pins.
 */
export function datasetRead(input: SplitInput): FileDigest[] {
  if (input.sanitised)
    return [
      { path: sanitisedPath(input.split.images), sha256: digestOf(input.sanitised.images) },
      { path: sanitisedPath(input.split.labels), sha256: digestOf(input.sanitised.labels) },
    ];
  return [
    { path: input.split.images, sha256: input.pinned?.images ?? '' },
    { path: input.split.labels, sha256: input.pinned?.labels ?? '' },
  ];
}
