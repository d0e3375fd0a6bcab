// The fuzz suite's mutators, seeded. Byte-level ones (bytes.ts) know nothing of the formats; structure-aware ones
// decode a seed, change fields a parser checks and re-encode it, so most of their cases get past the decoder and
// reach the checks behind it (one file per format).
export { FuzzRng, caseRng } from './rng.js';
export { BYTE_MUTATORS, HOSTILE_STRINGS, MAX_MUTANT_BYTES, copy, mutateBytes } from './bytes.js';
export { ONNX_MUTATORS, appendEmptyRepeated, mutateOnnx } from './onnx-mutators.js';
export { IDX_MUTATORS, compress, encodeIdx, mutateIdx, rawIdx, type IdxSpec } from './idx-mutators.js';
export {
  POLICY_OBJECT_MUTATORS,
  POLICY_TEXT_MUTATORS,
  mutateJson,
  mutatePolicyObject,
  mutatePolicyText,
  type Json,
} from './policy-mutators.js';
