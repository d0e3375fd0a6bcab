// A federated client's secure-aggregation phases after training (Bonawitz et al. 2017, double masking):
// share — deal Shamir shares of the round's mask key and of a fresh self-mask seed to every trained client, each
//   sealed for its holder;
// mask — add the self mask and the pairwise masks among the clients that shared, once per round;
// unmask — reveal, for each client that shared, the share of its self-mask seed if its masked input arrived and
//   the share of its mask key if it did not, once per round.
// Each phase checks every earlier phase's signed statements itself (federated-phases.ts): the orchestration that
// gathered them is not believed.
import { ApplicationFailure } from '@temporalio/activity';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { dealShares, openShare, sealShare, selfMask, addMask, type Revealed } from '../engine/federated/recovery.js';
import { maskedContribution } from '../engine/federated/secure-sum.js';
import { parameterCount, readVector, vectorBytes } from '../engine/federated/vector.js';
import { ARCHITECTURES } from '../engine/train/zoo.js';
import { shareThreshold } from '../policy/federated-threshold.js';
import {
  callingFederation,
  federation,
  type ClientIdentity,
  type ClientRoundInput,
  type ClientTrust,
} from './federated-client.js';
import { holdersOf, phaseProblems, type Phases } from './federated-phases.js';
import {
  checkRound,
  claim,
  digestOf,
  readState,
  serialized,
  statePath,
  writeState,
  type RoundState,
} from './federated-round-state.js';
import {
  participantsDigest,
  signStatement,
  type ClientStatement,
  type SignedStatement,
} from './federated-statement.js';
import type { ArtifactStore } from './store.js';

export type SecureInput = ClientRoundInput & Phases;

/** A bundle of sealed shares or a reveal is a few hundred bytes per client: anything far larger is refused. */
export const MAX_SHARE_BYTES = 1 << 20;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const fail = (why: string, type = 'FederatedState') => ApplicationFailure.nonRetryable(why, type);

/** The context every share is sealed in: the federation, the round, the trained set, the dealer and the holder. */
export const sealContext = (fid: string, round: number, trained: string, from: string, to: string) =>
  `${fid}\n${round}\n${trained}\n${from}\n${to}`;

/** The context of the masks: the federation, the round and the set that shared. */
export const maskContext = (fid: string, round: number, shared: string) => `${fid}\n${round}\n${shared}`;

/** The checks every phase makes before it acts: the policy, the start, the round, the phases so far, its state. */
async function open(me: ClientIdentity, trust: ClientTrust, input: SecureInput, phase: keyof Phases) {
  const f = await federation(me, trust, input);
  if (!f.config.secureAggregation) throw fail('this federation does not mask its updates', 'FederatedPolicy');
  const fid = callingFederation();
  const base = digestOf(input.base);
  checkRound(input.round, f.config);
  const problems = phaseProblems(input, f.config, { federation: fid, round: input.round, base });
  if (problems.length) throw fail(problems.join('; '), 'FederatedStatement');
  const path = statePath(me.stateDir, me.id, fid, input.round);
  const set = input[phase] as SignedStatement[];
  const mine = set.find((s) => s.statement.client === me.id);
  const once = <T>(step: string, digest: string, refused: string, fn: (state: RoundState) => Promise<T>) =>
    serialized(path, async () => {
      // Claimed before anything is computed, so two calls for two sets cannot both pass, even at once.
      if (!(await claim(path, step, digest))) throw fail(refused);
      const state = await readState(path);
      if (!state || state.base !== base)
        throw fail(`${me.id} holds no update of round ${input.round} of ${fid} from this global model`);
      return fn(state);
    });
  return { f, fid, base, path, mine, set, once };
}

export async function clientShare(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: SecureInput,
): Promise<SignedStatement> {
  const { f, fid, base, path, mine, once } = await open(me, trust, { ...input, shared: undefined }, 'trained');
  const trained = input.trained;
  const digest = participantsDigest(trained);
  const refused = `${me.id} already dealt its shares in round ${input.round} to another set of participants`;
  return once('share', digest, refused, async (state) => {
    if (state.shared) return state.shared;
    if (!state.agreement || !state.channel || mine?.signature !== state.trained.signature)
      throw fail(`${me.id}'s own trained statement is not among the participants`, 'FederatedStatement');
    const holders = holdersOf(trained);
    const seed = randomBytes(32);
    const shares = dealShares(state.agreement, seed, holders, shareThreshold(holders.length));
    const sealed: Record<string, string> = {};
    for (const t of trained) {
      const to = t.statement.client;
      if (to === me.id) continue;
      sealed[to] = sealShare(
        state.channel,
        t.statement.channelKey!,
        shares.get(to)!,
        sealContext(fid, input.round, digest, me.id, to),
      );
    }
    const bundle = await store.put(Buffer.from(JSON.stringify({ v: 1, shares: sealed })));
    const shared = signStatement(f.key, {
      ...head(fid, input.round, me.id, base, state),
      kind: 'shared',
      update: bundle.digest,
      participants: digest,
      selfMask: sha256(seed),
    });
    await writeState(path, {
      ...state,
      shared,
      sharedFor: digest,
      selfSeed: seed.toString('base64'),
      ownShare: shares.get(me.id)!.toString('base64'),
    });
    return shared;
  });
}

export async function clientMask(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: SecureInput,
): Promise<SignedStatement> {
  const { f, fid, base, path, mine, set, once } = await open(me, trust, { ...input, masked: undefined }, 'shared');
  const digest = participantsDigest(set);
  // Once per round: two sums over different sets would give away the difference, one client's update.
  const refused =
    `${me.id} already masked round ${input.round} for another set of participants; ` +
    'masking again would reveal its update';
  return once('mask', digest, refused, async (state) => {
    if (state.masked) {
      // A crash after the state was written may have left the unmasked update behind.
      await rm(`${path}.f32`, { force: true });
      return state.masked;
    }
    if (!state.shared || !state.selfSeed || !state.agreement?.privateKey || mine?.signature !== state.shared.signature)
      throw fail(`${me.id}'s own sharing statement is not among the participants`, 'FederatedStatement');
    let vector: Float32Array;
    try {
      vector = readVector(
        await readFile(`${path}.f32`),
        parameterCount(ARCHITECTURES[f.train.arch]),
        'the kept update',
      );
    } catch (e) {
      throw fail(`${me.id}: the kept update: ${(e as Error).message}`);
    }
    const keys = new Map(input.trained.map((t) => [t.statement.client, t.statement.agreementKey!]));
    const participants = set.map((s) => ({ id: s.statement.client, agreementKey: keys.get(s.statement.client)! }));
    const samples = state.trained.statement.samples;
    const total = set.reduce((s, t) => s + t.statement.samples, 0);
    // FedAvg weighs by images among those that shared (the server rescales if some drop before masking); DP-FedAvg
    // gives every client the same 1/K, so no one client's weight exceeds it.
    const share = f.config.dp ? 1 / f.config.clients.length : samples / total;
    const context = maskContext(fid, input.round, digest);
    const contribution = maskedContribution(vector, share, me.id, state.agreement, participants, context);
    addMask(contribution, selfMask(Buffer.from(state.selfSeed, 'base64'), context, contribution.length), 1);
    const stored = await store.put(vectorBytes(contribution));
    const masked = signStatement(f.key, {
      ...head(fid, input.round, me.id, base, state),
      kind: 'masked',
      update: stored.digest,
      participants: digest,
    });
    // The unmasked update, the mask key's private half and the self-mask seed are gone once the contribution exists:
    // nothing can be masked again, and what recovery needs lives on as the shares.
    const kept: RoundState = {
      ...state,
      masked,
      participants: digest,
      agreement: { ...state.agreement, privateKey: '' },
    };
    delete kept.selfSeed;
    await writeState(path, kept);
    await rm(`${path}.f32`, { force: true });
    return masked;
  });
}

export async function clientUnmask(
  me: ClientIdentity,
  trust: ClientTrust,
  store: ArtifactStore,
  input: SecureInput,
): Promise<SignedStatement> {
  const { f, fid, base, path, mine, set, once } = await open(me, trust, { ...input, revealed: undefined }, 'masked');
  const digest = participantsDigest(set);
  // Once per round, for one masked set: told another set, this client could reveal both secrets of someone.
  const refused = `${me.id} already revealed its shares in round ${input.round} for another set of masked inputs`;
  return once('reveal', digest, refused, async (state) => {
    if (state.revealed) return state.revealed;
    if (!state.masked || !state.channel || !state.ownShare || mine?.signature !== state.masked.signature)
      throw fail(`${me.id}'s own masked statement is not among the inputs`, 'FederatedStatement');
    const trained = input.trained;
    const holders = holdersOf(trained);
    const sharedFor = participantsDigest(trained);
    const arrived = new Set(set.map((s) => s.statement.client));
    const channels = new Map(trained.map((t) => [t.statement.client, t.statement.channelKey!]));
    const shares: Revealed['shares'] = {};
    for (const s of input.shared!) {
      const from = s.statement.client;
      let payload: Buffer;
      if (from === me.id) payload = Buffer.from(state.ownShare, 'base64');
      else {
        const sealed = await sealedFor(store, s, me.id);
        try {
          payload = openShare(
            state.channel,
            channels.get(from)!,
            sealed,
            sealContext(fid, input.round, sharedFor, from, me.id),
          );
        } catch (e) {
          throw fail(`the share ${from} sealed for ${me.id}: ${(e as Error).message}`, 'FederatedStatement');
        }
      }
      shares[from] = arrived.has(from)
        ? { kind: 'self', share: payload.subarray(32).toString('base64') }
        : { kind: 'mask', share: payload.subarray(0, 32).toString('base64') };
    }
    const reveal: Revealed = { x: holders.indexOf(me.id) + 1, shares };
    const stored = await store.put(Buffer.from(JSON.stringify(reveal)));
    const revealed = signStatement(f.key, {
      ...head(fid, input.round, me.id, base, state),
      kind: 'revealed',
      update: stored.digest,
      participants: digest,
    });
    // The round is over for this client: its channel key and its own shares go, so a later theft of its disk
    // opens nothing of this round.
    const kept: RoundState = { ...state, revealed, revealedFor: digest };
    delete kept.channel;
    delete kept.ownShare;
    await writeState(path, kept);
    return revealed;
  });
}

/** The share a client sealed for this holder, from the bundle its signed sharing statement names. */
async function sealedFor(store: ArtifactStore, s: SignedStatement, holder: string): Promise<string> {
  try {
    const bundle = JSON.parse((await store.get(s.statement.update!, MAX_SHARE_BYTES)).toString('utf8')) as {
      shares?: Record<string, unknown>;
    };
    const sealed = bundle.shares?.[holder];
    if (typeof sealed !== 'string') throw new Error(`it holds no share for ${holder}`);
    return sealed;
  } catch (e) {
    throw fail(`${s.statement.client}'s sealed shares: ${(e as Error).message}`, 'FederatedStatement');
  }
}

function head(federation: string, round: number, client: string, base: string, state: RoundState): ClientStatement {
  return { v: 1, federation, round, client, base, samples: state.trained.statement.samples, kind: 'trained' };
}
