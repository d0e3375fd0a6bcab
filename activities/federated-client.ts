// A federated client's activities, on the task queue named by its id: train from the global model on its own part
// of the split (the secure aggregation phases that follow are in federated-secure.ts). What the client believes
// comes from its own configuration: its id and key, and the policy read from its own policy source (the
// federation's settings, the split's pinned digests, the other clients' pinned keys). The task names only the
// policy, the round and the global model, which the client checks against what it reads.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runJob } from '../engine/jobs/run-job.js';
import { clippedDelta, maskedClip } from '../engine/federated/dp-fedavg.js';
import { newAgreementKey } from '../engine/federated/secure-sum.js';
import { parameterCount, readVector, vectorBytes } from '../engine/federated/vector.js';
import { ARCHITECTURES } from '../engine/train/zoo.js';
import { pinnedPair, type FederatedConfig, type TrainConfig } from '../policy/index.js';
import { jobDataset } from './job-dataset.js';
import { checkFederationStart, startValidity, type SignedFederationStart } from './federated-start.js';
import { engineJob } from './engine-job.js';
import { federatedPolicy } from './federated-policy.js';
import { signStatement, type ClientStatement, type SignedStatement } from './federated-statement.js';
import {
  checkRound,
  claim,
  digestOf,
  readState,
  serialized,
  statePath,
  writeAtomic,
  writeState,
} from './federated-round-state.js';
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

/** The federation as this client's policy source says, with this client's own key checked against its pin. */
export async function federation(me: ClientIdentity, trust: ClientTrust, input: ClientRoundInput) {
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

export function callingFederation(): string {
  const w = Context.current().info.workflowExecution;
  if (!w) throw ApplicationFailure.nonRetryable('a client round is run only for a workflow', 'FederatedContext');
  return w.workflowId;
}

export async function clientTrain(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: ClientRoundInput,
): Promise<SignedStatement> {
  const f = await federation(me, trust, input);
  const federationId = callingFederation();
  const split = f.dataset.splits[f.train.split];
  const pins = pinnedPair(f.dataset.files, split);
  if (!pins.images || !pins.labels)
    throw ApplicationFailure.nonRetryable(`the policy pins no digests for split ${f.train.split}`, 'DatasetNotPinned');
  const base = digestOf(input.base);
  checkRound(input.round, f.config);
  const path = statePath(me.stateDir, me.id, federationId, input.round);
  await mkdir(join(me.stateDir, me.id), { recursive: true, mode: 0o700 });
  // Once per round, claimed before training: a retry gets the statement already made; another global model for the
  // same round is refused, even when both calls come at once.
  return serialized(path, async () => {
    if (!(await claim(path, 'train', base)))
      throw ApplicationFailure.nonRetryable(
        `${me.id} already trained round ${input.round} of ${federationId} from another global model`,
        'FederatedState',
      );
    const earlier = await readState(path);
    if (earlier) return earlier.trained;
    // The job reads the global model itself, bounded by the architecture's size and checked against its digest.
    return engineJob({ code: 'InvalidTraining', prefix: 'client' }, async ({ workDir, signal, beat }) => {
      const result = await runJob(
        {
          ...localTraining(f.train, f.config),
          kind: 'train',
          ...(await jobDataset({ root: f.dataset.root, split, classes: f.dataset.classes, pinned: pins })),
          ...(f.dataset.maxFileBytes ? { maxBytes: f.dataset.maxFileBytes } : {}),
          // Every client and round draws its own shuffles and attack starts.
          seed: (f.train.seed * 1_000_003 + input.round * 1009 + f.index) >>> 0,
          workDir,
          client: {
            init: { path: await store.localPath(base), sha256: base },
            shard: {
              clients: f.config.clients.length,
              index: f.index,
              partition: f.config.partition,
              seed: f.train.seed,
            },
          },
        },
        { signal, onTrainProgress: beat },
      );
      const dp = f.config.dp;
      // DP-FedAvg: what leaves the client is its change, clipped; without DP, its new weights.
      const weights = dp
        ? await clippedChange(
            store,
            base,
            await readFile(result.weightsPath!),
            f.train.arch,
            clipFor(f.config, f.train.arch),
          )
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
      if (!f.config.secureAggregation) {
        const stored = await store.put(weights);
        const trained = signStatement(f.key, { ...statement, update: stored.digest });
        await writeState(path, { base, trained });
        return trained;
      }
      // Secure aggregation: the update stays on this client's disk until it is masked; only the round's keys are
      // announced (one for the pairwise masks, one for sealing the shares of its secrets to the others).
      const agreement = newAgreementKey();
      const channel = newAgreementKey();
      const trained = signStatement(f.key, {
        ...statement,
        kind: 'trained',
        agreementKey: agreement.publicKey,
        channelKey: channel.publicKey,
      });
      await writeAtomic(`${path}.f32`, weights);
      await writeState(path, { base, trained, agreement, channel });
      return trained;
    });
  });
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

/** DP-FedAvg's clipping bound as this client applies it: tighter by the fixed-point slack when masked. */
function clipFor(c: FederatedConfig, arch: string): number {
  const clip = c.dp!.clip;
  return c.secureAggregation ? maskedClip(clip, c.clients.length, parameterCount(ARCHITECTURES[arch])) : clip;
}

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
