// Labeled image sets from IDX pairs, as float pixels in [0, 1] ready for a model's [N, 1, H, W] input.
import { join } from 'node:path';
import { checkPair, readIdx, type LabeledImages } from './idx.js';

export interface ImageSet {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  shape: [number, number, number];
}

export const FASHION_FILES = {
  train: { images: 'train-images-idx3-ubyte.gz', labels: 'train-labels-idx1-ubyte.gz' },
  test: { images: 't10k-images-idx3-ubyte.gz', labels: 't10k-labels-idx1-ubyte.gz' },
} as const;

/** Reads a split from a folder holding the standard file names; `limit` keeps the first N images. */
export async function loadSplit(
  dir: string,
  split: 'train' | 'test',
  opts: { limit?: number; classes?: number } = {},
): Promise<ImageSet> {
  return loadPair(
    { images: join(dir, FASHION_FILES[split].images), labels: join(dir, FASHION_FILES[split].labels) },
    opts.classes ?? 10,
    opts.limit,
  );
}

/** An image file and its label file, each with the SHA-256 its bytes must have when one is pinned. */
export interface PairFiles {
  images: string;
  labels: string;
  imagesSha256?: string;
  labelsSha256?: string;
  /** Each file's largest decoded size; DEFAULT_MAX_IDX_BYTES when absent. */
  maxBytes?: number;
}

/**
 * Reads and checks an IDX image/label pair and scales pixels to [0, 1]; `limit` keeps the first N images. With
 * digests, a file whose bytes differ is refused (DatasetDigestMismatch) before any of it is used.
 */
export async function loadPair(files: PairFiles, classes: number, limit?: number): Promise<ImageSet> {
  return toImageSet(await readPair(files, classes), limit);
}

/** The pair as bytes, checked (digests, shapes, labels): for work that writes a changed copy of it. */
export async function readPair(files: PairFiles, classes: number): Promise<LabeledImages> {
  return checkPair(
    await readIdx(files.images, files.imagesSha256, { maxBytes: files.maxBytes }),
    await readIdx(files.labels, files.labelsSha256, { maxBytes: files.maxBytes }),
    files,
    classes,
  );
}

/** Pixels scaled to [0, 1]; `limit` keeps the first N images. */
export function toImageSet(pair: LabeledImages, limit?: number): ImageSet {
  const count = Math.min(pair.count, limit ?? pair.count);
  const pixels = pair.rows * pair.cols;
  const images = new Float32Array(count * pixels);
  for (let i = 0; i < images.length; i++) images[i] = pair.images[i] / 255;
  return { images, labels: pair.labels.slice(0, count), count, shape: [1, pair.rows, pair.cols] };
}

/** The first `from`..`to` images of a set, without copying. */
export function sliceSet(set: ImageSet, from: number, to: number): ImageSet {
  const pixels = set.shape.reduce((a, b) => a * b, 1);
  return {
    ...set,
    count: to - from,
    images: set.images.subarray(from * pixels, to * pixels),
    labels: set.labels.subarray(from, to),
  };
}

/** Early stopping's split: the last tenth of the images (at most 1000) held out for robust validation. */
export function holdOutValidation(all: ImageSet, earlyStop: boolean): { data: ImageSet; validation: ImageSet } {
  const held = earlyStop ? Math.min(1000, Math.floor(all.count / 10)) : 0;
  return { data: sliceSet(all, 0, all.count - held), validation: sliceSet(all, all.count - held, all.count) };
}
