// Writing IDX files of unsigned bytes, gzip-compressed like the datasets they are made from.
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';

/** The IDX bytes of an unsigned-byte array: magic 0x00 0x00 0x08 rank, then each dimension as a big-endian u32. */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`IDX dims ${dims.join('×')} need ${count} bytes, got ${data.length}`);
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

export async function writeIdxGz(path: string, dims: number[], data: Uint8Array): Promise<void> {
  await writeFile(path, gzipSync(encodeIdx(dims, data)));
}
