// The server's side of secure aggregation: the masked inputs summed, the survivors' self masks and the dropped
// clients' pairwise masks removed with the secrets the survivors' revealed shares rebuild (engine/federated/
// recovery.ts). Every phase's signed statements are checked first, as the clients check them.
import { createHash } from 'node:crypto';
import { recoverSum, type Revealed } from '../engine/federated/recovery.js';
import type { FederatedConfig } from '../policy/index.js';
import { shareThreshold } from '../policy/federated-threshold.js';
import { holdersOf, phaseProblems, type At, type Phases } from './federated-phases.js';
import { MAX_SHARE_BYTES, maskContext } from './federated-secure.js';
import { participantsDigest, type SignedStatement } from './federated-statement.js';
import type { ArtifactStore } from './store.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The round's average from its masked inputs; throws a message naming the problem (the caller refuses with it). */
export async function secureAverage(
  store: ArtifactStore,
  config: FederatedConfig,
  at: At,
  phases: Phases,
  count: number,
): Promise<Float32Array> {
  const problems = phaseProblems(phases, config, at);
  if (problems.length) throw new Error(problems.join('; '));
  const { trained, shared, masked, revealed } = phases as Required<Phases>;
  if (!shared || !masked || !revealed) throw new Error('secure aggregation needs every phase of the round');
  const contributions = new Map<string, Uint32Array>();
  for (const u of masked) {
    const bytes = await store.get(`sha256:${u.statement.update}`, count * 4);
    if (bytes.byteLength !== count * 4)
      throw new Error(`${u.statement.client}'s masked update has ${bytes.byteLength} bytes`);
    contributions.set(u.statement.client, new Uint32Array(new Uint8Array(bytes).buffer, 0, count));
  }
  const holders = holdersOf(trained);
  const sharers = shared.map((s) => s.statement.client);
  const reveals: Revealed[] = [];
  for (const r of revealed) {
    const who = r.statement.client;
    let reveal: Revealed;
    try {
      reveal = JSON.parse(
        (await store.get(`sha256:${r.statement.update}`, MAX_SHARE_BYTES)).toString('utf8'),
      ) as Revealed;
    } catch (e) {
      throw new Error(`${who}'s revealed shares: ${(e as Error).message}`);
    }
    // The point is the holder's own, and the shares name exactly the clients that shared.
    if (reveal?.x !== holders.indexOf(who) + 1) throw new Error(`${who}'s revealed shares are not at its own point`);
    const named = Object.keys(reveal.shares ?? {}).sort();
    if (named.join(',') !== [...sharers].sort().join(','))
      throw new Error(`${who} revealed shares for [${named.join(', ')}], not for the clients that shared`);
    reveals.push(reveal);
  }
  const keys = new Map(trained.map((t) => [t.statement.client, t.statement.agreementKey!]));
  const sum = recoverSum(
    {
      threshold: shareThreshold(holders.length),
      contributions,
      maskKeys: new Map(sharers.map((id) => [id, keys.get(id)!])),
      selfCommitments: new Map(shared.map((s) => [s.statement.client, s.statement.selfMask!])),
      revealed: reveals,
      context: maskContext(at.federation, at.round, participantsDigest(shared)),
    },
    sha256,
  );
  if (config.dp) return sum;
  // The clients weighed themselves by images among those that shared; those that dropped after leave a sum short
  // of their weight, restored here.
  const images = (s: SignedStatement[]) => s.reduce((n, x) => n + x.statement.samples, 0);
  const scale = images(shared) / images(masked);
  for (let i = 0; i < sum.length; i++) sum[i] *= scale;
  return sum;
}
