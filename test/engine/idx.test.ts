import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { gzipSync, gunzipSync } from 'node:zlib';
import { DatasetError, checkPair, classCounts, parseIdx, pixelStats, readIdx } from '../../engine/data/idx.js';
import { FASHION } from '../helpers/fixture.js';

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
    await expect(readIdx('/nonexistent/x.idx')).rejects.toThrow('/nonexistent/x.idx: cannot read (ENOENT)');
    expect(gzipSync(Buffer.alloc(0)).length).toBeGreaterThan(0);
    expect(() => parseIdx(gzipSync(Buffer.alloc(0)), 'z.gz')).toThrow('z.gz: the file decompresses to nothing');
  });
});
