// Fuzz cases: case `index` of `parser` under run seed `seed` is always the same input, whatever ran before it, so a
// finding is reproduced by generating that one case again (run.ts --parser P --seed S --case N).
import { gunzipSync, constants } from 'node:zlib';
import { isDocument, parseDocument } from 'yaml';
import { onnx } from '../engine/onnx/proto.js';
import {
  appendEmptyRepeated,
  caseRng,
  compress,
  encodeIdx,
  mutateBytes,
  mutateIdx,
  mutateOnnx,
  mutatePolicyObject,
  mutatePolicyText,
  rawIdx,
  type FuzzRng,
  type IdxSpec,
} from './mutators.js';
import { idxSeedSpecs, onnxSeeds, policySeeds } from './seeds.js';

export const PARSERS = ['onnx', 'idx', 'policy'] as const;
export type Parser = (typeof PARSERS)[number];

export interface MadeCase {
  parser: Parser;
  seed: number;
  index: number;
  /** How it was made: 'bytes' (byte-level), 'struct' (structure-aware), or a mix named after both. */
  kind: string;
  /** The mutations applied, in order. */
  applied: string[];
  input: Uint8Array;
}

export interface FuzzCase extends MadeCase {
  /**
   * Whether the input still decodes as its container format (protobuf, gzip/IDX header, YAML). Measured by the
   * fuzzer after the parser ran, so a decode here (a gigabyte, for some models) never counts as the parser's memory.
   */
  decodes: boolean;
}

/** A mutator that threw: a bug in the fuzzer, counted apart from the parsers' outcomes. */
export class MutatorError extends Error {}

interface Seeds {
  onnx: Uint8Array[];
  idx: IdxSpec[];
  policy: string[];
}

let seeds: Seeds | undefined;
/** Built once per process: the small CNN's weights take a few milliseconds to generate. */
export function allSeeds(): Seeds {
  return (seeds ??= { onnx: onnxSeeds(), idx: idxSeedSpecs(), policy: policySeeds() });
}

const utf8 = new TextEncoder();
const text = new TextDecoder();

function onnxCase(rng: FuzzRng, s: Seeds, only?: number): Omit<MadeCase, 'parser' | 'seed' | 'index'> {
  const r = rng.int(100);
  // Byte-level cases favour the small seeds: in the CNN most bytes are weights, and flipping those changes nothing.
  const small = only === undefined ? s.onnx.slice(1) : [s.onnx[only]];
  if (r < 40)
    return {
      kind: 'bytes',
      applied: ['bytes'],
      input: mutateBytes(rng, rng.pick(rng.chance(0.8) ? small : s.onnx), rng.pick(s.onnx)),
    };
  const seed = only === undefined ? rng.pick(s.onnx) : s.onnx[only];
  const model = onnx.ModelProto.decode(seed);
  const applied = mutateOnnx(rng, model);
  let encoded: Uint8Array = onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish();
  if (rng.chance(0.04)) {
    const wide = appendEmptyRepeated(rng, encoded);
    encoded = wide.bytes;
    applied.push(wide.applied);
  }
  // A few structure-aware cases get byte-level damage on top: valid fields next to broken framing.
  if (r < 55) return { kind: 'struct+bytes', applied: [...applied, 'bytes'], input: mutateBytes(rng, encoded) };
  return { kind: 'struct', applied, input: encoded };
}

function idxCase(rng: FuzzRng, s: Seeds): Omit<MadeCase, 'parser' | 'seed' | 'index'> {
  const seed = rng.pick(s.idx);
  const r = rng.int(100);
  if (r < 30) return { kind: 'bytes', applied: ['bytes'], input: mutateBytes(rng, encodeIdx(seed, rng)) };
  if (r < 45) {
    // Byte-level damage inside an intact gzip stream: the IDX layer sees it, not the CRC check.
    const mutated = mutateBytes(rng, rawIdx(seed));
    return { kind: 'bytes-in-gzip', applied: ['bytes', 'gzip'], input: compress(mutated, 'single', 0, rng) };
  }
  const { spec, applied } = mutateIdx(rng, seed);
  return { kind: 'struct', applied, input: encodeIdx(spec, rng) };
}

function policyCase(rng: FuzzRng, s: Seeds): Omit<MadeCase, 'parser' | 'seed' | 'index'> {
  const seed = rng.pick(s.policy);
  const r = rng.int(100);
  if (r < 25) {
    const other = utf8.encode(rng.pick(s.policy));
    return { kind: 'bytes', applied: ['bytes'], input: mutateBytes(rng, utf8.encode(seed), other) };
  }
  if (r < 75) {
    const { text: t, applied } = mutatePolicyObject(rng, seed);
    return { kind: 'struct', applied, input: utf8.encode(t) };
  }
  const { text: t, applied } = mutatePolicyText(rng, seed);
  return { kind: 'text', applied, input: utf8.encode(t) };
}

/** The case with whether it still decodes as the container the parser decodes first. Never throws. */
export function withDecodes(c: MadeCase): FuzzCase {
  return { ...c, decodes: decodesAsContainer(c.parser, c.input) };
}

function decodesAsContainer(parser: Parser, input: Uint8Array): boolean {
  try {
    if (parser === 'onnx') {
      onnx.ModelProto.decode(input);
      return true;
    }
    if (parser === 'idx') return idxHeaderReadable(input);
    const doc = parseDocument(text.decode(input), { uniqueKeys: false, logLevel: 'silent' });
    return isDocument(doc) && doc.errors.length === 0;
  } catch {
    return false;
  }
}

/**
 * For IDX, "decodes" means the gzip layer (if any) inflates and what comes out starts with a header the format
 * allows (00 00 08, rank 1-4, all dims present). Only the first 512 compressed bytes are inflated (at most 1032:1,
 * so half a megabyte): bombs cost nothing here, and the header is always within them.
 */
function idxHeaderReadable(input: Uint8Array): boolean {
  let head: Uint8Array = input;
  if (input[0] === 0x1f && input[1] === 0x8b)
    head = gunzipSync(input.subarray(0, 512), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: 1 << 20 });
  const rank = head[3];
  return head.length >= 4 + 4 * rank && head[0] === 0 && head[1] === 0 && head[2] === 8 && rank >= 1 && rank <= 4;
}

/**
 * Case `index` of `parser` under `seed`. `onnxSeed` restricts ONNX cases to one seed (0: the small CNN, the one
 * model `attack` can run; index into onnxSeeds()).
 */
export function makeCase(parser: Parser, seed: number, index: number, onnxSeed?: number): MadeCase {
  const rng = caseRng(seed, parser, index);
  const s = allSeeds();
  let made: Omit<MadeCase, 'parser' | 'seed' | 'index'>;
  try {
    made = parser === 'onnx' ? onnxCase(rng, s, onnxSeed) : parser === 'idx' ? idxCase(rng, s) : policyCase(rng, s);
  } catch (e) {
    throw new MutatorError(`${parser} case ${index}: the mutator failed: ${(e as Error).message}`);
  }
  return { parser, seed, index, ...made };
}
