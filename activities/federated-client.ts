// A federated client's activities, on the task queue named by its id: train from the global model on its own part
// of the split, and (with secure aggregation) mask the result for the participants the round settled on. What the
// client believes comes from its own configuration: its id and key, and the policy read from its own policy source
// (the federation's settings, the split's pinned digests, the other clients' pinned keys). The task names only the
// policy, the round and the global model, which the client checks against what it reads.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { createHash, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runJob } from '../engine/jobs/run-job.js';
import { clippedDelta } from '../engine/federated/dp-fedavg.js';
import { maskedContribution, newAgreementKey, type AgreementKey } from '../engine/federated/secure-sum.js';
import { parameterCount, readVector, vectorBytes } from '../engine/federated/vector.js';
import { ARCHITECTURES } from '../engine/train/zoo.js';
import { pinnedPair, type FederatedConfig, type TrainConfig } from '../policy/index.js';
import { jobDataset } from './job-dataset.js';
import { checkFederationStart, startValidity, type SignedFederationStart } from './federated-start.js';
import { jobFailure } from './job-failure.js';
import { federatedPolicy } from './federated-policy.js';
import {
  participantsDigest,
  signStatement,
  statementProblems,
  type ClientStatement,
  type SignedStatement,
} from './federated-statement.js';
import { rawPublicKey } from './keys.js';
import type { ArtifactStore } from './store.js';

export interface ClientIdentity {
  id: string;
  key: () => Promise<KeyObject>;
  /** Where the client keeps a round's unmasked update and agreement key between the two phases (its own disk). */
  stateDir: string;
}

/** What a client trusts besides its key: its policy source and the start keys (from its own environment). */
export interface ClientTrust {
  policyRoot: string;
  startKeys: string[];
}

export interface ClientRoundInput {
  /** The policy's path inside the client's policy source. */
  policy: string;
  start: SignedFederationStart;
  round: number;
  /** The global parameters the round starts from (artifact reference). */
  base: string;
}

export interface ClientMaskInput extends ClientRoundInput {
  /** The trained statements of the clients that answered the first phase, this client's among them. */
  trained: SignedStatement[];
}

/** The federation as this client's policy source says, with this client's own key checked against its pin. */
async function federation(me: ClientIdentity, trust: ClientTrust, input: ClientRoundInput) {
  const ref = input.policy;
  const { policy, train, config } = federatedPolicy(trust.policyRoot, ref);
  checkFederationStart(input.start, trust.startKeys, ref, startValidity(config));
  const dataset = policy.artifacts.dataset;
  if (!dataset) throw ApplicationFailure.nonRetryable(`policy ${ref} has no dataset`, 'FederatedPolicy');
  const pinned = config.clients.find((c) => c.id === me.id);
  const key = await me.key();
  if (!pinned) throw ApplicationFailure.nonRetryable(`${me.id} is not a client of policy ${ref}`, 'FederatedPolicy');
  if (pinned.publicKey !== rawPublicKey(key))
    throw ApplicationFailure.nonRetryable(
      `policy ${ref} pins another key for ${me.id} than the one this client signs with`,
      'FederatedPolicy',
    );
  return { policy, train, config, dataset, key, index: config.clients.indexOf(pinned) };
}

function callingFederation(): string {
  const w = Context.current().info.workflowExecution;
  if (!w) throw ApplicationFailure.nonRetryable('a client round is run only for a workflow', 'FederatedContext');
  return w.workflowId;
}

/** The file a round's private state lives in: one per federation and round, named by their hash. */
function statePath(me: ClientIdentity, federationId: string, round: number): string {
  const name = createHash('sha256').update(`${federationId}\n${round}`).digest('hex').slice(0, 32);
  return join(me.stateDir, me.id, name);
}

export async function clientTrain(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: ClientRoundInput,
): Promise<SignedStatement> {
  const ctx = Context.current();
  const f = await federation(me, trust, input);
  const federationId = callingFederation();
  const split = f.dataset.splits[f.train.split];
  const pins = pinnedPair(f.dataset.files, split);
  if (!pins.images || !pins.labels)
    throw ApplicationFailure.nonRetryable(`the policy pins no digests for split ${f.train.split}`, 'DatasetNotPinned');
  const base = digestOf(input.base);
  checkRound(input.round, f.config);
  const path = statePath(me, federationId, input.round);
  // Once per round: a retry gets the statement already made; another global model for the same round is refused.
  const earlier = await readState(path);
  if (earlier) {
    if (earlier.base === base) return earlier.trained;
    throw ApplicationFailure.nonRetryable(
      `${me.id} already trained round ${input.round} of ${federationId} from another global model`,
      'FederatedState',
    );
  }
  // The job reads the global model itself, bounded by the architecture's size and checked against its digest.
  const workDir = await mkdtemp(join(tmpdir(), 'secmlops-client-'));
  const ticker = setInterval(() => ctx.heartbeat(), 10_000);
  try {
    const result = await runJob(
      {
        ...localTraining(f.train, f.config),
        kind: 'train',
        ...jobDataset({ root: f.dataset.root, split, classes: f.dataset.classes, pinned: pins }),
        ...(f.dataset.maxFileBytes ? { maxBytes: f.dataset.maxFileBytes } : {}),
        // Every client and round draws its own shuffles and attack starts.
        seed: (f.train.seed * 1_000_003 + input.round * 1009 + f.index) >>> 0,
        workDir,
        client: {
          init: { path: store.pathOf(base), sha256: base },
          shard: {
            clients: f.config.clients.length,
            index: f.index,
            partition: f.config.partition,
            seed: f.train.seed,
          },
        },
      },
      { signal: ctx.cancellationSignal, onTrainProgress: (p) => ctx.heartbeat(p) },
    );
    const dp = f.config.dp;
    // DP-FedAvg: what leaves the client is its change, clipped; without DP, its new weights.
    const weights = dp
      ? await clippedChange(store, base, await readFile(result.weightsPath!), f.train.arch, dp.clip)
      : await readFile(result.weightsPath!);
    const last = result.history[result.history.length - 1];
    const statement: ClientStatement = {
      v: 1,
      federation: federationId,
      round: input.round,
      client: me.id,
      base,
      samples: result.images!,
      kind: 'update',
      // The local loss and accuracy describe this client's data: under DP they are not the accountant's to cover.
      ...(dp ? {} : { loss: last.loss, accuracy: last.accuracy }),
    };
    await mkdir(join(me.stateDir, me.id), { recursive: true, mode: 0o700 });
    if (!f.config.secureAggregation) {
      const stored = await store.put(weights);
      const trained = signStatement(f.key, { ...statement, update: stored.digest });
      await writeState(path, { base, trained });
      return trained;
    }
    // Secure aggregation: the update stays on this client's disk until it is masked; only the key is announced.
    const agreement = newAgreementKey();
    const trained = signStatement(f.key, { ...statement, kind: 'trained', agreementKey: agreement.publicKey });
    await writeAtomic(`${path}.f32`, weights);
    await writeState(path, { base, trained, agreement });
    return trained;
  } catch (e) {
    throw e instanceof ApplicationFailure ? e : jobFailure(e, 'InvalidTraining');
  } finally {
    clearInterval(ticker);
    await rm(workDir, { recursive: true, force: true });
  }
}

export async function clientMask(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: ClientMaskInput,
): Promise<SignedStatement> {
  const f = await federation(me, trust, input);
  const federationId = callingFederation();
  const base = digestOf(input.base);
  if (!f.config.secureAggregation)
    throw ApplicationFailure.nonRetryable('this federation does not mask its updates', 'FederatedPolicy');
  const want = { federation: federationId, round: input.round, base, kind: 'trained' as const };
  const problems = statementProblems(input.trained, f.config, want);
  if (problems.length) throw ApplicationFailure.nonRetryable(problems.join('; '), 'FederatedStatement');
  // Fewer than the quorum, and the sum would say too much about the few who are in it.
  if (input.trained.length < f.config.quorum)
    throw ApplicationFailure.nonRetryable(
      `${input.trained.length} participants is fewer than the quorum of ${f.config.quorum}`,
      'FederatedQuorum',
    );
  checkRound(input.round, f.config);
  const path = statePath(me, federationId, input.round);
  const state = await readState(path);
  if (!state || state.base !== base)
    throw ApplicationFailure.nonRetryable(
      `${me.id} holds no update of round ${input.round} of ${federationId} from this global model`,
      'FederatedState',
    );
  const digest = participantsDigest(input.trained);
  // Once per round: two sums over different sets would give away the difference, one client's update.
  if (state.masked) {
    if (state.participants === digest) return state.masked;
    throw ApplicationFailure.nonRetryable(
      `${me.id} already masked round ${input.round} for another set of participants; masking again would reveal ` +
        'its update',
      'FederatedState',
    );
  }
  const participants = input.trained.map((t) => ({ id: t.statement.client, agreementKey: t.statement.agreementKey! }));
  const mine = participants.find((p) => p.id === me.id);
  if (!state.agreement || !mine || mine.agreementKey !== state.agreement.publicKey)
    throw ApplicationFailure.nonRetryable(
      `${me.id}'s own trained statement is not among the participants`,
      'FederatedStatement',
    );
  let vector: Float32Array;
  try {
    vector = readVector(await readFile(`${path}.f32`), parameterCount(ARCHITECTURES[f.train.arch]), 'the kept update');
  } catch (e) {
    throw ApplicationFailure.nonRetryable(`${me.id}: the kept update: ${(e as Error).message}`, 'FederatedState');
  }
  const samples = state.trained.statement.samples;
  const total = input.trained.reduce((s, t) => s + t.statement.samples, 0);
  // FedAvg weighs by images; DP-FedAvg gives every client the same 1/K, so no one client's weight exceeds it.
  const share = f.config.dp ? 1 / f.config.clients.length : samples / total;
  const context = `${federationId}\n${input.round}\n${digest}`;
  const contribution = maskedContribution(vector, share, me.id, state.agreement, participants, context);
  const stored = await store.put(vectorBytes(contribution));
  const masked = signStatement(f.key, {
    v: 1,
    federation: federationId,
    round: input.round,
    client: me.id,
    base,
    samples,
    kind: 'masked',
    update: stored.digest,
    participants: digest,
  });
  // The private key and the unmasked update are gone once the contribution exists: nothing can be masked again.
  await writeState(path, { base, trained: state.trained, masked, participants: digest });
  await rm(`${path}.f32`, { force: true });
  return masked;
}

/** What a client keeps of a round: the statement it made, and (secure aggregation) its key until it masks. */
interface RoundState {
  base: string;
  trained: SignedStatement;
  agreement?: AgreementKey;
  masked?: SignedStatement;
  participants?: string;
}

async function readState(path: string): Promise<RoundState | undefined> {
  const text = await readFile(`${path}.json`, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as RoundState);
}

async function writeState(path: string, state: RoundState): Promise<void> {
  await writeAtomic(`${path}.json`, JSON.stringify(state));
}

/** Written beside, then renamed: a crash leaves the old file or the new one, never half of one. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFile(`${path}.tmp`, data, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

function checkRound(round: unknown, c: FederatedConfig): void {
  if (!(Number.isInteger(round) && (round as number) >= 1 && (round as number) <= c.rounds))
    throw ApplicationFailure.nonRetryable(`round ${String(round)} is not one of 1..${c.rounds}`, 'FederatedPolicy');
}

/** The train block's settings a client's local training uses: localEpochs per round, no checkpoints kept. */
function localTraining(t: TrainConfig, c: FederatedConfig) {
  return {
    arch: t.arch,
    defense: t.defense,
    epochs: c.localEpochs,
    batch: t.batch,
    lr: t.lr,
    optimizer: t.optimizer,
    schedule: t.schedule,
    weightDecay: t.weightDecay,
    earlyStop: false,
    range: t.range,
    checkpointEvery: 1_000_000,
    ...(t.augment ? { augment: t.augment } : {}),
    ...(t.limit ? { limit: t.limit } : {}),
  };
}

const digestOf = (ref: string) => ref.replace(/^sha256:/, '');

/** The local model's change from the global one, clipped to L2 norm `clip` (DP-FedAvg), as vector bytes. */
async function clippedChange(
  store: ArtifactStore,
  base: string,
  local: Uint8Array,
  arch: string,
  clip: number,
): Promise<Uint8Array> {
  const count = parameterCount(ARCHITECTURES[arch]);
  try {
    const global = readVector(await store.get(base, count * 4), count, 'the global model');
    return vectorBytes(clippedDelta(readVector(local, count, 'the local model'), global, clip).delta);
  } catch (e) {
    throw ApplicationFailure.nonRetryable(`DP-FedAvg: ${(e as Error).message}`, 'FederatedState');
  }
}
