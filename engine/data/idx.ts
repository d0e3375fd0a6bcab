// IDX files (the MNIST family's format), raw or gzip, checked before anything trusts their contents. A dataset file
// is chosen by whoever writes the policy: a 1 MB gzip can inflate to gigabytes, so inflation stops at the size the
// header declares, and the header may declare no more than a per-file cap.
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { RegularFileError, openRegular } from '../io/regular-file.js';
import { DatasetDigestMismatch, DatasetError } from './dataset-error.js';
import { IdxBuilder, corrupt, fmt, gunzipDeclared, isGzip, type IdxArray } from './idx-decode.js';

export { DatasetDigestMismatch, DatasetError, type IdxArray };

/** The largest IDX file (header and data, after inflating) read by default: Fashion-MNIST's largest is 47 MB. */
export const DEFAULT_MAX_IDX_BYTES = 512 * 1024 * 1024;

export interface IdxOptions {
  /** The largest decoded size (header and data) accepted; DEFAULT_MAX_IDX_BYTES when absent. */
  maxBytes?: number;
  /** Called at most every second while the file is read, so a caller can heartbeat through a long read. */
  onProgress?: (p: { bytes: number; size: number }) => void;
}

/** Parses IDX bytes (raw or gzip) of unsigned bytes (type 0x08), the only type the datasets we load use. */
export function parseIdx(bytes: Uint8Array, file: string, opts: Pick<IdxOptions, 'maxBytes'> = {}): IdxArray {
  if (bytes.length === 0) throw new DatasetError(file, 'the file is empty');
  const gzip = isGzip(bytes);
  const idx = new IdxBuilder(file, opts.maxBytes ?? DEFAULT_MAX_IDX_BYTES, gzip);
  idx.push(gzip ? gunzipDeclared(bytes, idx) : bytes);
  return idx.finish();
}

/**
 * Reads and parses an IDX file, streaming it: memory holds the decoded data once, at the size its header declares,
 * and never more. With `sha256`, the bytes on disk are hashed as they are read and must match it: the file is checked
 * as it is used, not only when the data stage made the manifest.
 */
export async function readIdx(
  path: string,
  sha256?: string,
  opts: IdxOptions = {},
): Promise<IdxArray & { sha256: string }> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_IDX_BYTES;
  const { handle, size, onDisk } = await openBounded(path, maxBytes);
  try {
    if (size === 0) throw new DatasetError(path, 'the file is empty');
    const hash = createHash('sha256');
    const read = { bytes: 0, stopped: false };
    let parsed: IdxArray;
    try {
      parsed = await decode(handle, new IdxBuilder(path, maxBytes, await startsGzip(handle)), {
        hash,
        read,
        onDisk,
        size,
        onProgress: opts.onProgress,
      });
    } catch (e) {
      read.stopped = true;
      const failure = readFailure(e, path);
      // A pinned file that does not parse was most likely changed since the manifest: the digest says so first.
      if (sha256 !== undefined) {
        await hashFrom(handle, hash, read.bytes, onDisk, path);
        const actual = hash.digest('hex');
        if (actual !== sha256) throw new DatasetDigestMismatch(path, actual, sha256);
      }
      throw failure;
    }
    const actual = hash.digest('hex');
    if (sha256 !== undefined && actual !== sha256) throw new DatasetDigestMismatch(path, actual, sha256);
    return { ...parsed, sha256: actual };
  } finally {
    await handle.close();
  }
}

/**
 * The SHA-256 of a dataset file, read under readIdx's rules (a regular file, within the on-disk bound of maxBytes),
 * without decoding it: enough to recognise bytes already checked.
 */
export async function digestIdx(path: string, opts: Pick<IdxOptions, 'maxBytes'> = {}): Promise<string> {
  const { handle, onDisk } = await openBounded(path, opts.maxBytes ?? DEFAULT_MAX_IDX_BYTES);
  try {
    const hash = createHash('sha256');
    await hashFrom(handle, hash, 0, onDisk, path);
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/**
 * Opens a regular file no larger on disk than a file decoding to maxBytes can be (gzip's framing and stored blocks
 * add at most a few bytes per 64 KiB to what they hold); closes it again on refusal.
 */
async function openBounded(
  path: string,
  maxBytes: number,
): Promise<{ handle: FileHandle; size: number; onDisk: number }> {
  const { handle, size } = await openRegular(path).catch((e: unknown) => {
    throw e instanceof RegularFileError ? new DatasetError(path, e.why) : e;
  });
  const onDisk = maxBytes + Math.ceil(maxBytes / 1024) + 65536;
  if (size > onDisk) {
    await handle.close();
    throw new DatasetError(
      path,
      `${fmt(size)} bytes on disk, too many for the ${fmt(maxBytes)}-byte dataset file limit`,
    );
  }
  return { handle, size, onDisk };
}

async function startsGzip(handle: FileHandle): Promise<boolean> {
  const magic = Buffer.alloc(2);
  await handle.read(magic, 0, 2, 0);
  return isGzip(magic);
}

/** Streams the file through the hash, then (for gzip) the inflater, into the builder. */
async function decode(
  handle: FileHandle,
  idx: IdxBuilder,
  o: {
    hash: Hash;
    read: { bytes: number; stopped: boolean };
    onDisk: number;
    size: number;
    onProgress?: IdxOptions['onProgress'];
  },
): Promise<IdxArray> {
  let last = Date.now();
  async function* hashing(chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      // Once the read has failed, the rest of the file is hashed elsewhere, in order: nothing more is hashed here.
      if (o.read.stopped) return;
      o.read.bytes += chunk.length;
      if (o.read.bytes > o.onDisk)
        throw new DatasetError(idx.file, `grew past ${fmt(o.onDisk)} bytes while being read`);
      o.hash.update(chunk);
      if (o.onProgress && Date.now() - last >= 1000) {
        last = Date.now();
        o.onProgress({ bytes: o.read.bytes, size: o.size });
      }
      yield chunk;
    }
  }
  const building = async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) idx.push(chunk);
  };
  const input = handle.createReadStream({ start: 0, highWaterMark: 1 << 20, autoClose: false });
  if (!idx.gzip) {
    await pipeline(input, hashing, building);
    return idx.finish();
  }
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  let inflated = false;
  gunzip.once('end', () => (inflated = true));
  try {
    await pipeline(input, hashing, gunzip, building);
  } catch (e) {
    // Bytes after the gzip member (zero padding): the inflater ends first and the pipeline aborts the read, or not,
    // depending on how the file was chunked. Accept it either way, as parseIdx does, and hash what was left unread.
    if (!(inflated && (e as NodeJS.ErrnoException).code === 'ABORT_ERR')) throw e;
    o.read.stopped = true;
    await hashFrom(handle, o.hash, o.read.bytes, o.onDisk, idx.file);
  }
  return idx.finish();
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
  // Four interleaved histograms: a background of equal pixels would otherwise make every increment wait for the
  // one before it on the same counter (about 4.8 ns a byte with one Float64Array, measured in the pipeline bench).
  // Each lane counts at most a quarter of the bytes, so 32 bits hold any array JavaScript can allocate.
  const lanes = new Uint32Array(1024);
  const n = images.length;
  const end = n - (n % 4);
  for (let i = 0; i < end; i += 4) {
    lanes[images[i]]++;
    lanes[256 + images[i + 1]]++;
    lanes[512 + images[i + 2]]++;
    lanes[768 + images[i + 3]]++;
  }
  for (let i = end; i < n; i++) lanes[images[i]]++;
  const hist = new Float64Array(256);
  for (let v = 0; v < 256; v++) hist[v] = lanes[v] + lanes[256 + v] + lanes[512 + v] + lanes[768 + v];
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

/** What went wrong in the read pipeline, as a DatasetError naming the file. */
function readFailure(e: unknown, path: string): DatasetError {
  if (e instanceof DatasetError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code?.startsWith('Z_')) return corrupt(path, e);
  return new DatasetError(path, `cannot read it (${code ?? (e as Error).message})`);
}

/** Hashes the rest of the file from `from` on, when the read stopped early but the digest still has to be known. */
async function hashFrom(handle: FileHandle, hash: Hash, from: number, limit: number, path: string): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let at = from; ;) {
    const { bytesRead } = await handle.read(buf, 0, buf.length, at);
    if (bytesRead === 0) return;
    at += bytesRead;
    if (at > limit) throw new DatasetError(path, `grew past ${fmt(limit)} bytes while being read`);
    hash.update(buf.subarray(0, bytesRead));
  }
}
