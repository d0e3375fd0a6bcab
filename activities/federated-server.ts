// The federation's server side, on the gpu queue: the initial global model, and each round's aggregation. The
// settings come from the policy as this worker's own policy source holds it, and every update counts only with its
// client's signed statement (federated-statement.ts): the orchestration that gathered them is not believed.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runJob } from '../engine/jobs/run-job.js';
import { clippedDelta, noisyAverage } from '../engine/federated/dp-fedavg.js';
import { epsilon } from '../engine/privacy/rdp.js';
import {
  parameterCount,
  readVector,
  unflatten,
  vectorBytes,
  weightedMean,
  flatten,
} from '../engine/federated/vector.js';
import { saveModel } from '../engine/onnx/model.js';
import { rngFor } from '../engine/train/rng-for.js';
import { ARCHITECTURES, deployableModel, initWeights } from '../engine/train/zoo.js';
import { canonicalJson, pinnedPair, type FederatedConfig, type Policy } from '../policy/index.js';
import { jobDataset } from './job-dataset.js';
import { jobFailure } from './job-failure.js';
import { federatedPolicy } from './federated-policy.js';
import { statementProblems, type SignedStatement } from './federated-statement.js';
import { secureAverage } from './federated-unmask.js';
import { claim, createOnce, writeAtomic } from './federated-round-state.js';
import type { ArtifactStore } from './store.js';
import type { ClientTrust } from './federated-client.js';
import { checkFederationStart, startValidity, type SignedFederationStart } from './federated-start.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface FederationPlan {
  /** The federation's settings as the worker's policy source holds them: what the workflow orchestrates by. */
  config: FederatedConfig;
  arch: string;
  /** The initial global parameters (artifact reference). */
  base: string;
}

export interface AggregateInput {
  policy: string;
  start: SignedFederationStart;
  round: number;
  base: string;
  /** Plain: the update statements. Secure aggregation: the masked statements. */
  updates: SignedStatement[];
  /** Secure aggregation: the statements of the round's earlier phases, and the survivors' reveals. */
  trained?: SignedStatement[];
  shared?: SignedStatement[];
  revealed?: SignedStatement[];
}

export interface RoundResult {
  round: number;
  /** The new global parameters, and the deployable model built from them. */
  global: string;
  modelRef: string;
  modelSha256: string;
  /** Each counted client, with the digest of the update it sent (masked, with secure aggregation). */
  clients: { id: string; samples: number; update: string; loss?: number; accuracy?: number }[];
  /** Clean accuracy of the global model on the policy's evaluate split, when it has one. */
  testAccuracy?: number;
  /** DP-FedAvg: the (ε, δ) spent by the rounds so far, this one included. */
  privacy?: { epsilon: number; delta: number; noiseMultiplier: number; clip: number };
}

export async function beginFederation(
  trust: ClientTrust,
  store: ArtifactStore,
  input: { policy: string; start: SignedFederationStart },
): Promise<FederationPlan> {
  checkFederationStart(input.start, trust.startKeys, input.policy);
  const { train, config } = federatedPolicy(trust.policyRoot, input.policy);
  const arch = ARCHITECTURES[train.arch];
  const stored = await store.put(vectorBytes(flatten(arch, initWeights(arch, rngFor(train.seed, -1)))));
  return { config, arch: train.arch, base: stored.ref };
}

export async function aggregateRound(
  trust: ClientTrust,
  store: ArtifactStore,
  stateDir: string,
  input: AggregateInput,
): Promise<RoundResult> {
  const { policy, train, config } = federatedPolicy(trust.policyRoot, input.policy);
  checkFederationStart(input.start, trust.startKeys, input.policy, startValidity(config));
  const arch = ARCHITECTURES[train.arch];
  const count = parameterCount(arch);
  const base = input.base.replace(/^sha256:/, '');
  // The federation is the workflow the server delivered this task for, not one the input names.
  const federation = Context.current().info.workflowExecution?.workflowId ?? '';
  const at = { federation, round: input.round, base };
  const refuse = (why: string) => {
    throw ApplicationFailure.nonRetryable(`round ${input.round}: ${why}`, 'FederatedUpdateRefused');
  };
  if (!(Number.isInteger(input.round) && input.round >= 1 && input.round <= config.rounds))
    refuse(`not one of the rounds 1..${config.rounds}`);
  // The chain of global models, kept by the server side itself: round 1 starts from the seeded initialisation,
  // every later round from the global model the round before produced here.
  const chain = join(stateDir, createHash('sha256').update(federation).digest('hex').slice(0, 32));
  const previous =
    input.round === 1
      ? sha256(vectorBytes(flatten(arch, initWeights(arch, rngFor(train.seed, -1)))))
      : await readFile(join(chain, `round-${input.round - 1}.json`), 'utf8').then(
          (t) => (JSON.parse(t) as { global: string }).global,
          () => undefined,
        );
  if (previous !== base)
    refuse(`the round starts from ${base.slice(0, 12)}…, not the global model round ${input.round - 1} produced`);
  const updates = Array.isArray(input.updates) ? input.updates : [];
  const problems = statementProblems(updates, config, {
    ...at,
    kind: config.secureAggregation ? 'masked' : 'update',
  });
  if (problems.length) refuse(problems.join('; '));
  if (updates.length < config.quorum)
    refuse(`${updates.length} signed updates, fewer than the quorum of ${config.quorum}`);
  await mkdir(chain, { recursive: true });
  // One aggregation per round, of one set of statements: two averages of a round over different sets would give the
  // difference away (under DP exactly, the noise being the round's). A retry with the same statements goes on.
  const statements = { updates, trained: input.trained, shared: input.shared, revealed: input.revealed };
  if (!(await claim(join(chain, `round-${input.round}`), 'aggregate', sha256(Buffer.from(canonicalJson(statements))))))
    refuse('this round was already aggregated from other statements; a round is averaged once');
  let average: Float32Array;
  if (config.secureAggregation) {
    const phases = { trained: input.trained ?? [], shared: input.shared, masked: updates, revealed: input.revealed };
    average = await secureAverage(store, config, at, phases, count).catch((e: Error) => refuse(e.message));
  } else {
    const parts: { vector: Float32Array; samples: number }[] = [];
    for (const u of updates) {
      const bytes = await store.get(`sha256:${u.statement.update}`, count * 4);
      parts.push({ vector: readVector(bytes, count, `${u.statement.client}'s update`), samples: u.statement.samples });
    }
    average = config.dp ? clippedSum(parts, config.dp.clip) : weightedMean(parts);
  }
  let privacy: RoundResult['privacy'];
  if (config.dp) {
    const dp = config.dp;
    const baseVector = readVector(await store.get(`sha256:${base}`, count * 4), count, 'the global model');
    const seed = await noiseSeed(join(chain, `round-${input.round}.seed`));
    const round = { clip: dp.clip, noiseMultiplier: dp.noiseMultiplier, clients: config.clients.length, seed };
    average = noisyAverage(baseVector, average, round, config.secureAggregation);
    // Every client is asked every round (sample rate 1): no amplification by sampling is claimed.
    const spent = epsilon({ sampleRate: 1, noiseMultiplier: dp.noiseMultiplier, steps: input.round }, dp.delta);
    privacy = { epsilon: spent.epsilon, delta: dp.delta, noiseMultiplier: dp.noiseMultiplier, clip: dp.clip };
  }
  const global = await store.put(vectorBytes(average));
  await writeAtomic(join(chain, `round-${input.round}.json`), JSON.stringify({ base, global: global.digest }));
  const model = await store.put(saveModel(deployableModel(arch, unflatten(arch, average))));
  return {
    round: input.round,
    global: global.ref,
    modelRef: model.ref,
    modelSha256: model.digest,
    clients: updates.map((u) => ({
      id: u.statement.client,
      samples: u.statement.samples,
      update: u.statement.update!,
      ...(u.statement.loss !== undefined ? { loss: u.statement.loss } : {}),
      ...(u.statement.accuracy !== undefined ? { accuracy: u.statement.accuracy } : {}),
    })),
    ...(await testAccuracy(policy, store, model.digest)),
    ...(privacy ? { privacy } : {}),
  };
}

/** DP-FedAvg without secure aggregation: the server clips every change again itself, then sums them. */
function clippedSum(parts: { vector: Float32Array }[], clip: number): Float32Array {
  const zero = new Float32Array(parts[0].vector.length);
  const sum = new Float64Array(zero.length);
  for (const p of parts) {
    const d = clippedDelta(p.vector, zero, clip).delta;
    for (let i = 0; i < sum.length; i++) sum[i] += d[i];
  }
  return Float32Array.from(sum);
}

/**
 * The round's secret noise seed, made once: a retried aggregation adds the same noise, rather than publishing a
 * second draw of the same round (which the accountant does not count).
 */
async function noiseSeed(path: string): Promise<Buffer> {
  const seed = await createOnce(path, randomBytes(32));
  if (seed.length !== 32) throw new Error(`the noise seed ${path} has ${seed.length} bytes, expected 32`);
  return seed;
}

/** The global model's clean accuracy on the evaluate split (pinned), measured in an engine job. */
async function testAccuracy(policy: Policy, store: ArtifactStore, digest: string): Promise<{ testAccuracy?: number }> {
  const e = policy.evaluate;
  const dataset = policy.artifacts.dataset;
  const split = e && dataset?.splits[e.split];
  if (!e || !dataset || !split) return {};
  try {
    const result = await runJob({
      kind: 'evaluate',
      modelPath: await store.localPath(digest),
      modelSha256: digest,
      ...(await jobDataset({
        root: dataset.root,
        split,
        classes: dataset.classes,
        pinned: pinnedPair(dataset.files, split),
      })),
      ...(dataset.maxFileBytes ? { maxBytes: dataset.maxFileBytes } : {}),
      limit: e.limit,
      range: e.range,
      seed: e.seed,
      attacks: [],
    });
    return { testAccuracy: result.cleanAccuracy };
  } catch (err) {
    throw jobFailure(err, 'InvalidEvaluation');
  }
}
