// Every file the product reads from a path someone else chose (models, dataset files, keys, policies) is opened
// here. A path can name a FIFO (the read blocks forever), /dev/zero (it never ends) or a directory; checking with
// stat() first and reading after leaves a window to swap the file. So the file is opened first, without following a
// final symlink and without blocking, and the open descriptor is what gets checked and read.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, type Stats } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { InputError } from '../input-error.js';

/** A path that does not name a readable regular file within the size allowed. */
export class RegularFileError extends InputError {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path}: ${why}`);
    this.name = 'RegularFileError';
  }
}

// O_NONBLOCK: opening a FIFO must not wait for a writer before fstat can refuse it. O_NOFOLLOW: the path was
// resolved just before, so a final symlink now means it was swapped in between.
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function cannot(path: string, e: unknown): RegularFileError {
  return new RegularFileError(path, `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
}

function checkStat(path: string, st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new RegularFileError(path, `${kind(st)}, not a regular file; refused`);
  if (st.size > maxBytes) throw new RegularFileError(path, `${st.size} bytes, over the ${maxBytes}-byte limit`);
}

export interface OpenedFile {
  handle: FileHandle;
  size: number;
}

/** Opens a regular file of at most maxBytes for reading; the caller closes the handle. */
export async function openRegular(path: string, maxBytes = Number.MAX_SAFE_INTEGER): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await open(await realpath(path), FLAGS);
  } catch (e) {
    throw cannot(path, e);
  }
  try {
    const st = await handle.stat();
    checkStat(path, st, maxBytes);
    return { handle, size: st.size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** The whole file, refusing anything but a regular file of at most maxBytes (also if it grows while read). */
export async function readRegular(path: string, maxBytes: number): Promise<Buffer> {
  const { handle, size } = await openRegular(path, maxBytes);
  try {
    const buf = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) throw new RegularFileError(path, `grew past the ${maxBytes}-byte limit while being read`);
      const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    if (n > maxBytes) throw new RegularFileError(path, `grew past the ${maxBytes}-byte limit while being read`);
    return buf.subarray(0, n);
  } finally {
    await handle.close();
  }
}

/** readRegular for synchronous callers (the policy parser's key-file callback). */
export function readRegularSync(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(realpathSync(path), FLAGS);
  } catch (e) {
    throw cannot(path, e);
  }
  try {
    const st = fstatSync(fd);
    checkStat(path, st, maxBytes);
    const buf = Buffer.alloc(st.size + 1);
    let n = 0;
    for (;;) {
      if (n === buf.length) throw new RegularFileError(path, `grew past the ${maxBytes}-byte limit while being read`);
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > maxBytes) throw new RegularFileError(path, `grew past the ${maxBytes}-byte limit while being read`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export interface HashProgress {
  /** Bytes hashed so far in this file. */
  bytes: number;
  size: number;
}

/**
 * SHA-256 of a regular file, streamed in 1 MiB chunks, calling onProgress at most every progressMs so a long file
 * can heartbeat while it is read.
 */
export async function hashRegular(
  path: string,
  opts: { signal?: AbortSignal; onProgress?: (p: HashProgress) => void; progressMs?: number } = {},
): Promise<{ sha256: string; bytes: number }> {
  const { handle, size } = await openRegular(path);
  const hash = createHash('sha256');
  let bytes = 0;
  let last = Date.now();
  try {
    for await (const chunk of handle.createReadStream({
      highWaterMark: 1 << 20,
      signal: opts.signal,
      autoClose: false,
    })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (opts.onProgress && Date.now() - last >= (opts.progressMs ?? 1000)) {
        last = Date.now();
        opts.onProgress({ bytes, size });
      }
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}
