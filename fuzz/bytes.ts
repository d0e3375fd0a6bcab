// Byte-level mutators: they know nothing of the formats, so they mostly test the decoders' framing checks.
import type { FuzzRng } from './rng.js';

/** No mutated input grows past this: the parsers' own caps are far larger, and memory is shared with other jobs. */
export const MAX_MUTANT_BYTES = 4 * 1024 * 1024;

/** Byte values that sit on boundaries: zero, all ones, the signed extremes. */
const INTERESTING_8 = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x08, 0x0a, 0x12, 0x1a];
/** 32-bit boundaries, written big-endian (IDX dimensions) or little-endian (protobuf fixed32, lengths). */
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0x40000000];

/**
 * A copy. Not `b.slice()`: inputs are often Buffers (protobufjs and zlib return them), whose slice is a view of the
 * same memory, so mutating it would change the seed (and other Buffers sharing Node's pool).
 */
export const copy = (b: Uint8Array, start?: number, end?: number): Uint8Array => new Uint8Array(b.subarray(start, end));

type ByteMutator = (rng: FuzzRng, b: Uint8Array, other: Uint8Array) => Uint8Array;

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** A random [start, end) inside b, usually short: long ranges are rarely more interesting and cost memory. */
function span(rng: FuzzRng, b: Uint8Array): [number, number] {
  const start = rng.int(b.length + 1);
  const len = rng.chance(0.8) ? rng.range(1, 16) : rng.int(b.length - start + 1);
  return [start, Math.min(b.length, start + len)];
}

export const BYTE_MUTATORS: Record<string, ByteMutator> = {
  bitFlip: (rng, b) => {
    const out = copy(b);
    for (let i = rng.geometric(8); i > 0 && out.length; i--) out[rng.int(out.length)] ^= 1 << rng.int(8);
    return out;
  },
  interestingByte: (rng, b) => {
    const out = copy(b);
    for (let i = rng.geometric(4); i > 0 && out.length; i--) out[rng.int(out.length)] = rng.pick(INTERESTING_8);
    return out;
  },
  interestingWord: (rng, b) => {
    if (b.length < 4) return copy(b);
    const out = copy(b);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    view.setUint32(rng.int(out.length - 3), rng.pick(INTERESTING_32), rng.chance(0.5));
    return out;
  },
  insertRandom: (rng, b) => {
    const at = rng.int(b.length + 1);
    return concat(b.subarray(0, at), rng.bytes(rng.range(1, 64)), b.subarray(at));
  },
  deleteRange: (rng, b) => {
    const [s, e] = span(rng, b);
    return concat(b.subarray(0, s), b.subarray(e));
  },
  duplicateRange: (rng, b) => {
    const [s, e] = span(rng, b);
    const times = rng.chance(0.9) ? 1 : rng.range(2, 64);
    const copies = Array.from({ length: times }, () => b.subarray(s, e));
    return concat(b.subarray(0, e), ...copies, b.subarray(e));
  },
  truncate: (rng, b) => copy(b, 0, rng.int(b.length)),
  splice: (rng, b, other) => concat(b.subarray(0, rng.int(b.length + 1)), other.subarray(rng.int(other.length + 1))),
};

/** Stacks one to a few byte-level mutations (AFL's havoc, without its schedule); `other` is a second seed to splice. */
export function mutateBytes(rng: FuzzRng, seed: Uint8Array, other: Uint8Array = seed): Uint8Array {
  const names = Object.keys(BYTE_MUTATORS);
  let out = seed;
  for (let i = rng.geometric(4); i > 0; i--) {
    out = BYTE_MUTATORS[rng.pick(names)](rng, out, other);
    if (out.length > MAX_MUTANT_BYTES) out = out.subarray(0, MAX_MUTANT_BYTES);
  }
  return out === seed ? copy(seed) : out;
}

/** Strings that have broken parsers before: prototype names, paths out of a folder, devices, control bytes. */
export const HOSTILE_STRINGS = [
  '',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '../../.secmlops/keys/release.key',
  '/etc/passwd',
  '/dev/zero',
  '/dev/stdin',
  'fifo',
  '.',
  '..',
  '\u0000',
  '\u202e',
  '%s%n',
  '${HOME}',
  'a'.repeat(300),
  '💥',
];
