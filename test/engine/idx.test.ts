import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gzipSync, gunzipSync } from 'node:zlib';
import {
  DEFAULT_MAX_IDX_BYTES,
  DatasetDigestMismatch,
  DatasetError,
  checkPair,
  classCounts,
  parseIdx,
  pixelStats,
  readIdx,
} from '../../engine/data/idx.js';
import { FASHION, sha256 } from '../helpers/fixture.js';

const labelsGz = readFileSync(`${FASHION}/t10k-labels-idx1-ubyte.gz`);
const imagesGz = readFileSync(`${FASHION}/t10k-images-idx3-ubyte.gz`);

describe('IDX reader on real Fashion-MNIST', () => {
  test('reads gzip and raw files alike and checks a pair', async () => {
    const images = await readIdx(`${FASHION}/t10k-images-idx3-ubyte.gz`);
    const labels = parseIdx(gunzipSync(labelsGz), 'labels.idx');
    expect(images.dims).toEqual([10000, 28, 28]);
    const pair = checkPair(images, labels, { images: 'i', labels: 'l' }, 10);
    expect(pair.count).toBe(10000);
    expect(classCounts(pair.labels, 10)).toEqual(new Array(10).fill(1000));
    const px = pixelStats(pair.images);
    expect(px.mean).toBeCloseTo(0.2868, 3);
    expect(px.std).toBeCloseTo(0.3524, 3);
    expect([px.min, px.max]).toEqual([0, 1]);
  });

  test('pixel statistics agree with a direct sum for every length modulo the four counting lanes', () => {
    for (const n of [1, 2, 3, 4, 5, 1001, 1002, 1003]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * i * 31 + 7 * i + 3) % 200);
      bytes[n - 1] = 250;
      let sum = 0;
      let sq = 0;
      for (const b of bytes) {
        sum += b;
        sq += b * b;
      }
      const mean = sum / n;
      const px = pixelStats(bytes);
      expect(px.mean).toBeCloseTo(mean / 255, 12);
      expect(px.std).toBeCloseTo(Math.sqrt(Math.max(0, sq / n - mean * mean)) / 255, 12);
      expect(px.min).toBe(Math.min(...bytes) / 255);
      expect(px.max).toBe(250 / 255);
    }
  });
});

describe('IDX reader refuses bad files with the file and the reason', () => {
  const raw = gunzipSync(labelsGz);
  const cases: [string, Uint8Array, string][] = [
    ['an empty file', new Uint8Array(), 'f.idx: the file is empty'],
    ['a truncated gzip stream', labelsGz.subarray(0, 100), 'f.idx: gzip data is corrupt or truncated'],
    [
      'truncated data',
      raw.subarray(0, 5000),
      'f.idx: truncated: dimensions 10000 need 10000 bytes of data, the file has 4992',
    ],
    ['a truncated header', raw.subarray(0, 6), 'f.idx: truncated: the header needs 8 bytes, the file has 6'],
    [
      'a bad magic number',
      Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]),
      'f.idx: not an IDX file: the magic starts 50 4b, expected 00 00',
    ],
    ['a float element type', Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 0]), 'f.idx: unsupported IDX element type 0d'],
    ['trailing bytes', Buffer.concat([raw, Buffer.from([1, 2])]), 'f.idx: 2 unexpected bytes after the 10000 data'],
  ];
  test.each(cases)('%s', (_n, bytes, message) => {
    expect(() => parseIdx(bytes, 'f.idx')).toThrow(DatasetError);
    expect(() => parseIdx(bytes, 'f.idx')).toThrow(message);
  });

  test('labels that disagree with the images in count or range', () => {
    const images = parseIdx(imagesGz, 'images.gz');
    const fewer = parseIdx(
      Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0x27, 0x0f]), raw.subarray(8, 8 + 9999)]),
      'labels',
    );
    expect(() => checkPair(images, fewer, { images: 'images.gz', labels: 'labels.gz' }, 10)).toThrow(
      'labels.gz: 9999 labels for 10000 images in images.gz',
    );
    const bad = Buffer.from(raw);
    bad[8 + 42] = 12;
    expect(() => checkPair(images, parseIdx(bad, 'l'), { images: 'images.gz', labels: 'labels.gz' }, 10)).toThrow(
      'labels.gz: label 12 at index 42 is outside 0..9',
    );
    expect(() =>
      checkPair(parseIdx(raw, 'l'), parseIdx(raw, 'l'), { images: 'labels-as-images', labels: 'l' }, 10),
    ).toThrow('labels-as-images: expected images of rank 3');
  });

  test('a missing file is named', async () => {
    await expect(readIdx('/nonexistent/x.idx')).rejects.toThrow('/nonexistent/x.idx: cannot read it (ENOENT)');
    expect(gzipSync(Buffer.alloc(0)).length).toBeGreaterThan(0);
    expect(() => parseIdx(gzipSync(Buffer.alloc(0)), 'z.gz')).toThrow('z.gz: the file decompresses to nothing');
  });
});

/** An IDX header for unsigned bytes of these dimensions. */
function idxHeader(dims: number[]): Buffer {
  const h = Buffer.alloc(4 + 4 * dims.length);
  h.set([0, 0, 8, dims.length]);
  dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i));
  return h;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-idx-'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('IDX files that are not files', () => {
  test.each([
    ['/dev/zero', 'a character device, not a regular file; refused'],
    ['fifo', 'a FIFO, not a regular file; refused'],
    ['.', 'a directory, not a regular file; refused'],
  ])(
    '%s is refused at once, naming it',
    async (name, why) => {
      const path = name.startsWith('/') ? name : join(dir, name);
      const read = readIdx(path, 'a'.repeat(64));
      await expect(read).rejects.toThrow(DatasetError);
      await expect(read).rejects.toThrow(`${path}: ${why}`);
    },
    5000,
  );
});

describe('IDX sizes are capped by the header and per file', () => {
  test('a header may not declare more than maxBytes (default 512 MiB), refused before anything is allocated', async () => {
    expect(DEFAULT_MAX_IDX_BYTES).toBe(512 * 1024 * 1024);
    const path = join(dir, 'declares-100mb.gz');
    await writeFile(path, gzipSync(Buffer.concat([idxHeader([100, 1000, 1000]), Buffer.alloc(1000)])));
    await expect(readIdx(path, undefined, { maxBytes: 50_000_000 })).rejects.toThrow(
      `${path}: its header declares 100×1000×1000 bytes (100,000,016 with the header), over the 50,000,000-byte limit for a dataset file`,
    );
    await expect(readIdx(path)).rejects.toThrow(`${path}: truncated: dimensions 100×1000×1000 need 100000000 bytes`);
  });

  test('a file larger on disk than maxBytes allows is refused before it is read', async () => {
    const path = join(dir, 'big.idx');
    await writeFile(path, Buffer.concat([idxHeader([1, 200_000]), Buffer.alloc(200_000)]));
    await expect(readIdx(path, undefined, { maxBytes: 1000 })).rejects.toThrow(
      `${path}: 200,012 bytes on disk, too many for the 1,000-byte dataset file limit`,
    );
  });

  test('gzip output past the declared size: a few bytes are counted, more stop the inflation', async () => {
    const few = join(dir, 'few.gz');
    await writeFile(few, gzipSync(Buffer.concat([idxHeader([10]), Buffer.alloc(10 + 100)])));
    await expect(readIdx(few)).rejects.toThrow(`${few}: 100 unexpected bytes after the 10 data`);
    const bomb = gzipSync(Buffer.concat([idxHeader([10]), Buffer.alloc(50_000_000)]));
    expect(bomb.length).toBeLessThan(100_000);
    const path = join(dir, 'small-bomb.gz');
    await writeFile(path, bomb);
    await expect(readIdx(path)).rejects.toThrow(`${path}: inflates past the 18 bytes its header declares`);
    expect(() => parseIdx(bomb, 'bomb.gz')).toThrow('bomb.gz: inflates past the 18 bytes its header declares');
  });

  test('a pinned file that no longer parses is reported as changed, since the digest covers every byte on disk', async () => {
    const labels = readFileSync(`${FASHION}/t10k-labels-idx1-ubyte.gz`);
    const path = join(dir, 'labels.gz');
    await writeFile(path, labels.subarray(0, 2000));
    const pinned = (await readIdx(`${FASHION}/t10k-labels-idx1-ubyte.gz`)).sha256;
    await expect(readIdx(path, pinned)).rejects.toThrow(DatasetDigestMismatch);
    await expect(readIdx(path, await sha256(path))).rejects.toThrow(`${path}: gzip data is corrupt or truncated`);
  });
});

describe('gzip bombs', () => {
  // 1.2 GB of zeros deflates to about 1.2 MB. A gzip file may hold several members, whose outputs concatenate: the
  // zeros are compressed once and put after a small member holding each bomb's IDX header.
  const ZEROS = 1_200_000_000;
  let zeros: Buffer;
  beforeAll(async () => {
    const path = join(dir, 'zeros.gz');
    async function* source() {
      const mb = Buffer.alloc(1_000_000);
      for (let i = 0; i < ZEROS / mb.length; i++) yield mb;
    }
    await pipeline(source, createGzip({ level: 9 }), createWriteStream(path));
    zeros = await readFile(path);
  }, 60_000);

  /** Reads the file in a child process; returns the refusal and the child's peak resident memory (VmHWM). */
  async function readInChild(path: string): Promise<{ message: string; peakMb: number }> {
    const script = `
      import { readFileSync } from 'node:fs';
      const { readIdx } = await import(${JSON.stringify(join(process.cwd(), 'engine/data/idx.ts'))});
      const message = await readIdx(${JSON.stringify(path)}).then(() => 'accepted', (e) => e.message);
      const hwm = /VmHWM:\\s*(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
      console.log(JSON.stringify({ message, peakMb: Number(hwm[1]) / 1024 }));`;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 30_000 },
    );
    return JSON.parse(stdout) as { message: string; peakMb: number };
  }

  test.each([
    [
      'declaring 100 MB and inflating to 1.2 GB: refused once past the declared size',
      [10_000, 100, 100],
      'inflates past the 100,000,016 bytes its header declares',
    ],
    [
      'declaring what it holds, 1.2 GB: refused by the per-file cap before anything is allocated',
      [1_200_000, 1000],
      'its header declares 1200000×1000 bytes (1,200,000,012 with the header), over the 536,870,912-byte limit for a dataset file',
    ],
  ])(
    '%s',
    async (_name, dims, why) => {
      const path = join(dir, `bomb-${dims.join('x')}.gz`);
      await writeFile(path, Buffer.concat([gzipSync(idxHeader(dims)), zeros]));
      expect(zeros.length).toBeLessThan(1_300_000);
      const { message, peakMb } = await readInChild(path);
      expect(message).toBe(`${path}: ${why}`);
      expect(peakMb).toBeLessThan(300);
      console.log(`${_name}: peak ${peakMb.toFixed(0)} MB`);
    },
    40_000,
  );
});

describe('zero padding after the gzip member', () => {
  test('is accepted every time, as parseIdx accepts it, with the digest of the whole file (it was 6% ABORT_ERR)', async () => {
    const raw = Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 3]), Buffer.from([1, 2, 3])]);
    const bytes = Buffer.concat([gzipSync(raw), Buffer.from([0, 0])]);
    const path = join(dir, 'padded.gz');
    await writeFile(path, bytes);
    expect(Array.from(parseIdx(bytes, path).data)).toEqual([1, 2, 3]);
    for (let i = 0; i < 300; i++) {
      const r = await readIdx(path, createHash('sha256').update(bytes).digest('hex'));
      expect(Array.from(r.data)).toEqual([1, 2, 3]);
    }
  });
});
