// Sharded evaluation's activities on the gpu queue: each part attacks its image range and signs what it stored; the
// merge checks every part's signature and binding (this stage's workflow, pipeline, change, policy, model, files,
// suite) and that the parts tile the set once, then merges their per-image values and signs the evaluation, as one
// activity over the whole set would. A part from another run, model or suite, a missing or repeated part, or
// results edited in the store are refused by name.
import { ApplicationFailure } from '@temporalio/common';
import { mergeParts } from '../engine/jobs/evaluate-shards.js';
import type { EvaluatePart } from '../engine/jobs/protocol.js';
import { canonicalJson, evidenceProblem, type Evidence } from '../policy/index.js';
import {
  evaluationDataset,
  evaluationOutput,
  modelOf,
  prepare,
  runEvaluation,
  type EvaluateInput,
  type EvaluateOutput,
} from './evaluate.js';
import { callingWorkflow, type EvidenceSigner } from './evidence.js';
import type { ArtifactStore } from './store.js';

export interface ShardInput extends EvaluateInput {
  shard: { index: number; count: number };
}

export interface MergeInput extends EvaluateInput {
  parts: Evidence<'evaluation-shard'>[];
}

/** Per-image values of 10,000 images and a few attacks stay far below these. */
const MAX_PART_BYTES = 64 * 1024 ** 2;
const MAX_MERGE_BYTES = 512 * 1024 ** 2;

const refuse = (why: string) => ApplicationFailure.nonRetryable(`sharded evaluation: ${why}`, 'InvalidShard');

export async function evaluateShard(
  store: ArtifactStore,
  signer: () => Promise<EvidenceSigner>,
  input: ShardInput,
): Promise<Evidence<'evaluation-shard'>> {
  // The merge believes only signed parts: without an evidence context there is nothing to bind them to.
  if (!input.evidence) throw refuse('parts are signed evidence, and this stage asked for none');
  const seal = (await prepare(input, signer))!;
  const stored = await modelOf(store, input);
  const { part } = await runEvaluation(input, stored, input.shard);
  if (!part) throw refuse('the engine job returned no per-image values');
  const results = await store.put(Buffer.from(JSON.stringify(part)));
  return seal.sign('evaluation-shard', input.evidence, {
    modelSha256: stored.digest,
    dataset: evaluationDataset(input),
    config: input.config,
    shard: { ...input.shard, start: part.start, end: part.end, images: part.images },
    results: results.ref,
  });
}

export async function mergeEvaluation(
  store: ArtifactStore,
  signer: () => Promise<EvidenceSigner>,
  input: MergeInput,
): Promise<EvaluateOutput> {
  if (!input.evidence) throw refuse('parts are signed evidence, and this stage asked for none');
  const seal = (await prepare(input, signer))!;
  // `auto`: the workflow chose the count from the gpu workers polling; every part must still name it and the parts
  // must tile the images exactly once.
  const count = input.config.shards === 'auto' ? input.parts.length : (input.config.shards ?? 1);
  if (input.parts.length !== count) throw refuse(`${input.parts.length} parts given, the policy asks for ${count}`);
  if (count < 1 || count > 64) throw refuse(`${count} parts given: between 1 and 64 are allowed`);
  const expected = {
    pipelineId: input.evidence.pipelineId,
    workflowId: callingWorkflow(),
    stage: input.evidence.stage,
    subjectDigest: input.evidence.subjectDigest,
    policyDigest: input.evidence.policyDigest,
    dataset: canonicalJson(evaluationDataset(input)),
    config: canonicalJson(input.config),
  };
  const seen = new Set<number>();
  let model: string | undefined;
  const parts: EvaluatePart[] = [];
  let total = 0;
  for (const [i, e] of input.parts.entries()) {
    const where = `part ${i + 1} of ${input.parts.length}`;
    const problem = evidenceProblem(e, seal.publicKey, 'evaluation-shard');
    if (problem) throw refuse(`${where}: ${problem}`);
    const { body } = e;
    const p = body.payload;
    for (const k of ['pipelineId', 'workflowId', 'stage', 'subjectDigest', 'policyDigest'] as const)
      if (body[k] !== expected[k]) throw refuse(`${where} was measured for another ${k} (${String(body[k])})`);
    if (canonicalJson(p.dataset) !== expected.dataset) throw refuse(`${where} read other files`);
    if (canonicalJson(p.config) !== expected.config) throw refuse(`${where} followed another evaluate block`);
    model ??= p.modelSha256;
    if (p.modelSha256 !== model) throw refuse(`${where} attacked another model (${p.modelSha256})`);
    if (p.shard.count !== count || seen.has(p.shard.index) || p.shard.index < 0 || p.shard.index >= count)
      throw refuse(`${where} is part ${p.shard.index} of ${p.shard.count}: repeated or outside 0–${count - 1}`);
    seen.add(p.shard.index);
    // Content-addressed: the store refuses bytes that are not the ones the part signed.
    const bytes = await store.get(p.results, MAX_PART_BYTES);
    total += bytes.length;
    if (total > MAX_MERGE_BYTES) throw refuse(`the parts' values pass ${MAX_MERGE_BYTES} bytes together`);
    const part = JSON.parse(bytes.toString('utf8')) as EvaluatePart;
    if (part.start !== p.shard.start || part.end !== p.shard.end || part.images !== p.shard.images)
      throw refuse(`${where}'s stored values cover other images than it signed`);
    parts.push(part);
  }
  let result;
  try {
    result = mergeParts(parts);
  } catch (e) {
    throw refuse((e as Error).message);
  }
  // The stage's model, read as the unsharded activity reads it: the parts must have attacked exactly it.
  const stored = await modelOf(store, input);
  if (model !== stored.digest) throw refuse(`the parts attacked ${model}, not the stage's model ${stored.digest}`);
  return evaluationOutput(input, stored, result, seal);
}
