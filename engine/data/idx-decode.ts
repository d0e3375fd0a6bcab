// Decoding IDX bytes that arrive in pieces, with the decoded size bounded by what the header declares: the data is
// allocated once, at that size, and a gzip stream that inflates past it is stopped at once.
import { constants, gunzipSync } from 'node:zlib';
import { DatasetError } from './dataset-error.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

// Inflated bytes past the declared size still taken before giving up, so a few stray bytes are reported by count.
const SLACK = 4096;
// Deflate expands at most 1032:1, which bounds what a prefix of the stream can inflate to.
const DEFLATE_RATIO = 1032;

interface IdxHeader {
  dims: number[];
  /** Header bytes. */
  size: number;
  /** Data bytes the dimensions call for. */
  count: number;
}

/** The header once `buf` holds all of it, undefined until then; throws as soon as the bytes cannot be IDX. */
function readHeader(buf: Uint8Array, file: string): IdxHeader | undefined {
  if (buf.length < 4) return undefined;
  if (buf[0] !== 0 || buf[1] !== 0)
    throw new DatasetError(file, `not an IDX file: the magic starts ${hex(buf[0])} ${hex(buf[1])}, expected 00 00`);
  if (buf[2] !== 0x08)
    throw new DatasetError(file, `unsupported IDX element type ${hex(buf[2])}; only unsigned bytes (08) are supported`);
  const rank = buf[3];
  if (rank < 1 || rank > 4) throw new DatasetError(file, `IDX rank ${rank} is outside 1..4`);
  const size = 4 + 4 * rank;
  if (buf.length < size) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset, size);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  return { dims, size, count: dims.reduce((a, b) => a * b, 1) };
}

/**
 * Takes an IDX file's decoded bytes in pieces. The data is allocated once, when the header arrives, at the size it
 * declares (refused over maxBytes); inflated output past that size (and a little slack) is refused at once.
 */
export class IdxBuilder {
  private head = new Uint8Array(0);
  private header?: IdxHeader;
  private data?: Uint8Array;
  private filled = 0;
  private extra = 0;

  constructor(
    readonly file: string,
    readonly maxBytes: number,
    readonly gzip: boolean,
  ) {}

  /** The header, as soon as the decoded bytes hold it; the declared size is checked against maxBytes. */
  declared(buf: Uint8Array): IdxHeader | undefined {
    const h = readHeader(buf, this.file);
    if (h && h.size + h.count > this.maxBytes)
      throw new DatasetError(
        this.file,
        `its header declares ${h.dims.join('×')} bytes (${fmt(h.size + h.count)} with the header), over the ${fmt(this.maxBytes)}-byte limit for a dataset file`,
      );
    return h;
  }

  push(chunk: Uint8Array): void {
    let rest = chunk;
    if (!this.header) {
      const head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
      const h = this.declared(head);
      if (!h) {
        this.head = Uint8Array.from(head);
        return;
      }
      this.header = h;
      this.data = new Uint8Array(h.count);
      rest = head.subarray(h.size);
    }
    const data = this.data!;
    const taken = Math.min(data.length - this.filled, rest.length);
    data.set(rest.subarray(0, taken), this.filled);
    this.filled += taken;
    this.extra += rest.length - taken;
    if (this.gzip && this.extra > SLACK) throw inflatesPast(this.file, this.header);
  }

  finish(): IdxArray {
    const h = this.header;
    const n = this.head.length;
    if (!h) {
      if (n === 0)
        throw new DatasetError(this.file, this.gzip ? 'the file decompresses to nothing' : 'the file is empty');
      if (n < 4) throw new DatasetError(this.file, `truncated: ${n} bytes is shorter than the 4-byte IDX magic`);
      throw new DatasetError(this.file, `truncated: the header needs ${4 + 4 * this.head[3]} bytes, the file has ${n}`);
    }
    const dims = h.dims.join('×');
    if (this.filled < h.count)
      throw new DatasetError(
        this.file,
        `truncated: dimensions ${dims} need ${h.count} bytes of data, the file has ${this.filled}`,
      );
    if (this.extra > 0) throw new DatasetError(this.file, `${this.extra} unexpected bytes after the ${dims} data`);
    return { dims: h.dims, data: this.data! };
  }
}

/**
 * Inflates gzip bytes held in memory to at most the size their IDX header declares: a bounded prefix is inflated
 * first to read the header, then the whole stream with that size as zlib's output limit.
 */
export function gunzipDeclared(bytes: Uint8Array, idx: IdxBuilder): Buffer {
  const gunzip = (input: Uint8Array, opts: { finishFlush?: number; maxOutputLength: number }, past?: DatasetError) => {
    try {
      return gunzipSync(input, opts);
    } catch (e) {
      if (past && (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw past;
      throw corrupt(idx.file, e);
    }
  };
  // Output past maxBytes means a header declaring more, or data past what it declares: refused either way.
  const pastLimit = new DatasetError(idx.file, `inflates past the ${fmt(idx.maxBytes)}-byte limit for a dataset file`);
  for (let n = 64; ; n *= 2) {
    const part = bytes.subarray(0, n);
    const maxOutputLength = Math.min(DEFLATE_RATIO * part.length + 1024, idx.maxBytes + SLACK);
    const head = gunzip(part, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength }, pastLimit);
    const h = idx.declared(head);
    if (h) return gunzip(bytes, { maxOutputLength: h.size + h.count + SLACK }, inflatesPast(idx.file, h));
    if (part.length === bytes.length) return gunzip(bytes, { maxOutputLength }, pastLimit);
  }
}

function inflatesPast(file: string, h: IdxHeader): DatasetError {
  return new DatasetError(file, `inflates past the ${fmt(h.size + h.count)} bytes its header declares`);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

export function corrupt(file: string, e: unknown): DatasetError {
  return new DatasetError(file, `gzip data is corrupt or truncated (${(e as Error).message})`);
}

export function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function hex(b: number | undefined): string {
  return (b ?? 0).toString(16).padStart(2, '0');
}
