// IDX files (the MNIST family's format), raw or gzip, checked before anything trusts their contents.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

export class DatasetError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'DatasetError';
  }
}

/** A dataset file whose bytes are not the ones the manifest (and the policy) pinned: changed after it was checked. */
export class DatasetDigestMismatch extends DatasetError {
  readonly code = 'DatasetDigestMismatch';
  constructor(file: string, actual: string, expected: string) {
    super(
      file,
      `SHA-256 ${actual} differs from ${expected}, which the manifest pinned: the file changed after the data stage checked it`,
    );
    this.name = 'DatasetDigestMismatch';
  }
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const MAX_DECOMPRESSED = 2 ** 31 - 1;

/** Parses IDX bytes of unsigned bytes (type 0x08), the only type the datasets we load use. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  let buf = bytes;
  if (buf.length === 0) throw new DatasetError(file, 'the file is empty');
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: MAX_DECOMPRESSED });
    } catch (e) {
      throw new DatasetError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
    }
    if (buf.length === 0) throw new DatasetError(file, 'the file decompresses to nothing');
  }
  if (buf.length < 4)
    throw new DatasetError(file, `truncated: ${buf.length} bytes is shorter than the 4-byte IDX magic`);
  if (buf[0] !== 0 || buf[1] !== 0)
    throw new DatasetError(file, `not an IDX file: the magic starts ${hex(buf[0])} ${hex(buf[1])}, expected 00 00`);
  if (buf[2] !== 0x08)
    throw new DatasetError(file, `unsupported IDX element type ${hex(buf[2])}; only unsigned bytes (08) are supported`);
  const rank = buf[3];
  if (rank < 1 || rank > 4) throw new DatasetError(file, `IDX rank ${rank} is outside 1..4`);
  const header = 4 + 4 * rank;
  if (buf.length < header)
    throw new DatasetError(file, `truncated: the header needs ${header} bytes, the file has ${buf.length}`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const have = buf.length - header;
  if (have < count)
    throw new DatasetError(
      file,
      `truncated: dimensions ${dims.join('×')} need ${count} bytes of data, the file has ${have}`,
    );
  if (have > count) throw new DatasetError(file, `${have - count} unexpected bytes after the ${dims.join('×')} data`);
  return { dims, data: buf.subarray(header) };
}

/**
 * Reads and parses an IDX file. With `sha256`, the bytes read are hashed and must match it: the file is checked
 * as it is used, not only when the data stage made the manifest.
 */
export async function readIdx(path: string, sha256?: string): Promise<IdxArray & { sha256: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new DatasetError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== undefined && actual !== sha256) throw new DatasetDigestMismatch(path, actual, sha256);
  return { ...parseIdx(bytes, path), sha256: actual };
}

export interface LabeledImages {
  count: number;
  rows: number;
  cols: number;
  images: Uint8Array;
  labels: Uint8Array;
}

/** Pairs an image file with its label file and checks that they agree and that every label is a valid class. */
export function checkPair(
  images: IdxArray,
  labels: IdxArray,
  files: { images: string; labels: string },
  classes: number,
): LabeledImages {
  if (images.dims.length !== 3)
    throw new DatasetError(files.images, `expected images of rank 3 (count×rows×cols), got rank ${images.dims.length}`);
  if (labels.dims.length !== 1)
    throw new DatasetError(files.labels, `expected labels of rank 1, got rank ${labels.dims.length}`);
  const [count, rows, cols] = images.dims;
  if (count === 0 || rows === 0 || cols === 0)
    throw new DatasetError(files.images, `the file holds no images (${images.dims.join('×')})`);
  if (labels.dims[0] !== count)
    throw new DatasetError(files.labels, `${labels.dims[0]} labels for ${count} images in ${files.images}`);
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] >= classes)
      throw new DatasetError(files.labels, `label ${labels.data[i]} at index ${i} is outside 0..${classes - 1}`);
  }
  return { count, rows, cols, images: images.data, labels: labels.data };
}

export interface PixelStats {
  mean: number;
  std: number;
  min: number;
  max: number;
}

/** Mean and standard deviation of pixels scaled to [0, 1]. */
export function pixelStats(images: Uint8Array): PixelStats {
  const hist = new Float64Array(256);
  for (let i = 0; i < images.length; i++) hist[images[i]]++;
  let sum = 0;
  let sq = 0;
  let min = 255;
  let max = 0;
  for (let v = 0; v < 256; v++) {
    if (hist[v] === 0) continue;
    sum += hist[v] * v;
    sq += hist[v] * v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = sum / images.length;
  return {
    mean: mean / 255,
    std: Math.sqrt(Math.max(0, sq / images.length - mean * mean)) / 255,
    min: min / 255,
    max: max / 255,
  };
}

export function classCounts(labels: Uint8Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of labels) counts[l]++;
  return counts;
}

function hex(b: number | undefined): string {
  return (b ?? 0).toString(16).padStart(2, '0');
}
