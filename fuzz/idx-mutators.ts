// Structure-aware IDX mutation: a file is described by its fields (magic, element type, rank, dims, payload and how
// it is compressed), one or more fields are changed, and the file is written from the description. The gzip layer
// is varied on its own: one member or several, cut short, followed by junk, or inflating past the declared size.
import { gzipSync } from 'node:zlib';
import type { FuzzRng } from './rng.js';

export interface IdxSpec {
  /** The two magic bytes that must be zero. */
  magic: [number, number];
  /** Element type byte; 0x08 (unsigned byte) is the only one the engine reads. */
  type: number;
  /** The rank byte; may disagree with dims.length after mutation. */
  rank: number;
  dims: number[];
  payload: Uint8Array;
  /** Zero bytes appended to the payload inside the compressed stream: an inflation bomb when large. */
  zeros: number;
  gzip: 'none' | 'single' | 'members' | 'truncated' | 'junk';
}

/** Dimensions at the edges: empty, the uint32 extremes, and sizes at the 512 MiB default cap (2^29 bytes). */
const DIMS = [0, 1, 2, 3, 28, 255, 256, 65_536, 0x7fffffff, 0xffffffff, 2 ** 29 - 8, 2 ** 29 - 7, 2 ** 24];
const TYPES = [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff, 0x07];
/** Zero padding past the payload: a little (slack is 4 KiB) or an inflation bomb (kept small enough to share a host). */
const ZEROS = [1, 4096, 4097, 1 << 20, 16 << 20, 64 << 20];

const product = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** The IDX bytes before compression. */
export function rawIdx(s: IdxSpec): Uint8Array {
  const out = new Uint8Array(4 + 4 * s.dims.length + s.payload.length);
  out.set([s.magic[0], s.magic[1], s.type, s.rank]);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  s.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d >>> 0, false));
  out.set(s.payload, 4 + 4 * s.dims.length);
  return out;
}

// Compressed runs of zeros, kept: a 64 MiB run costs a few hundred milliseconds to deflate and is reused as a
// second gzip member (gunzip reads concatenated members as one stream).
const zeroMembers = new Map<number, Uint8Array>();
function zeroMember(n: number): Uint8Array {
  let z = zeroMembers.get(n);
  if (!z) zeroMembers.set(n, (z = gzipSync(new Uint8Array(n), { level: 9 })));
  return z;
}

const cat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** The file a spec describes. */
export function encodeIdx(s: IdxSpec, rng: FuzzRng): Uint8Array {
  return compress(rawIdx(s), s.gzip, s.zeros, rng);
}

/** Wraps decoded IDX bytes the way `gzip` says, with `zeros` zero bytes after them (inside the stream). */
export function compress(raw: Uint8Array, gzip: IdxSpec['gzip'], zeros: number, rng: FuzzRng): Uint8Array {
  const small = zeros > 0 && zeros <= 1 << 20;
  const bomb = () => (zeros > 0 ? [zeroMember(zeros)] : []);
  switch (gzip) {
    case 'none':
      return small ? cat([raw, new Uint8Array(zeros)]) : raw;
    case 'single':
      // A small run of zeros goes inside the one member; a bomb follows as a member of its own.
      return small ? gzipSync(cat([raw, new Uint8Array(zeros)])) : cat([gzipSync(raw), ...bomb()]);
    case 'members': {
      // The header itself may straddle two members.
      const at = rng.int(raw.length + 1);
      return cat([gzipSync(raw.subarray(0, at)), gzipSync(raw.subarray(at)), ...bomb()]);
    }
    case 'truncated': {
      const z = cat([gzipSync(raw), ...bomb()]);
      return z.subarray(0, rng.int(z.length));
    }
    case 'junk':
      return cat([gzipSync(raw), ...bomb(), rng.bytes(rng.range(1, 32))]);
  }
}

type IdxMutator = (rng: FuzzRng, s: IdxSpec) => void;

export const IDX_MUTATORS: Record<string, IdxMutator> = {
  magic: (rng, s) => {
    s.magic[rng.int(2)] = rng.pick([0x00, 0x01, 0x08, 0x1f, 0x8b, 0xff, 0x80]);
  },
  type: (rng, s) => {
    s.type = rng.pick(TYPES);
  },
  rank: (rng, s) => {
    s.rank = rng.pick([0, 1, 2, 3, 4, 5, 8, 255]);
    // Half the time the dims follow the rank byte, half the time they keep the old count (header and data disagree).
    if (rng.chance(0.5) && s.rank <= 8) {
      while (s.dims.length < s.rank) s.dims.push(rng.pick(DIMS.slice(0, 6)));
      s.dims.length = s.rank;
    }
  },
  dims: (rng, s) => {
    if (s.dims.length) s.dims[rng.int(s.dims.length)] = rng.pick(DIMS);
  },
  payloadLength: (rng, s) => {
    const declared = product(s.dims);
    const fits = Number.isSafeInteger(declared) && declared <= 1 << 20;
    const len = fits
      ? Math.max(0, declared + rng.pick([-1, 1, -declared, 4096, 4097, rng.range(-8, 8)]))
      : rng.pick([0, 1, 16, 4096]);
    const p = new Uint8Array(len);
    p.set(s.payload.subarray(0, len));
    s.payload = p;
  },
  payloadMatches: (rng, s) => {
    // The payload the (mutated) header calls for, when it is small: such files pass every check.
    const declared = product(s.dims);
    if (Number.isSafeInteger(declared) && declared <= 1 << 20) s.payload = rng.bytes(declared);
  },
  labels: (rng, s) => {
    const p = new Uint8Array(s.payload);
    for (let i = rng.geometric(4); i > 0 && p.length; i--) p[rng.int(p.length)] = rng.pick([9, 10, 0xff, 0x80]);
    s.payload = p;
  },
  gzip: (rng, s) => {
    s.gzip = rng.pick(['none', 'single', 'members', 'truncated', 'junk'] as const);
  },
  bomb: (rng, s) => {
    s.zeros = rng.pick(ZEROS);
    if (s.gzip === 'none' && s.zeros > 1 << 20) s.gzip = 'single';
  },
};

/** Applies one to a few mutations to a copy of the seed spec; returns the copy and the mutations' names. */
export function mutateIdx(rng: FuzzRng, seed: IdxSpec): { spec: IdxSpec; applied: string[] } {
  const spec: IdxSpec = { ...seed, magic: [...seed.magic], dims: [...seed.dims] };
  const names = Object.keys(IDX_MUTATORS);
  const applied: string[] = [];
  for (let i = rng.geometric(3); i > 0; i--) {
    const name = rng.pick(names);
    IDX_MUTATORS[name](rng, spec);
    applied.push(name);
  }
  return { spec, applied };
}
