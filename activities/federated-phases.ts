// The sets of signed statements a secure-aggregation round accumulates, checked the same way by every client and the
// server: each phase's statements are signed by pinned keys for this federation, round and base, name the digest of
// the previous phase's set they answered, come from members of that set, and are enough to finish the round.
import { shareThreshold } from '../policy/federated-threshold.js';
import type { FederatedConfig } from '../policy/index.js';
import {
  participantsDigest,
  statementProblems,
  type ClientStatement,
  type SignedStatement,
} from './federated-statement.js';

export interface Phases {
  trained: SignedStatement[];
  shared?: SignedStatement[];
  masked?: SignedStatement[];
  revealed?: SignedStatement[];
}

export interface At {
  federation: string;
  round: number;
  base: string;
}

const ORDER: [keyof Phases, ClientStatement['kind']][] = [
  ['trained', 'trained'],
  ['shared', 'shared'],
  ['masked', 'masked'],
  ['revealed', 'revealed'],
];

/** Problems with the phases given (in order, up to the last one present); none means they all hold. */
export function phaseProblems(p: Phases, config: FederatedConfig, at: At): string[] {
  const holders = Array.isArray(p.trained) ? p.trained.length : 0;
  // Shares are dealt to every trained client: finishing after a drop needs a majority of them to reveal.
  const needed = Math.max(config.quorum, shareThreshold(holders));
  let previous: SignedStatement[] | undefined;
  for (const [key, kind] of ORDER) {
    const set = p[key];
    if (set === undefined) break;
    const problems = statementProblems(set, config, { ...at, kind });
    if (problems.length) return problems.map((x) => `${key}: ${x}`);
    const min = key === 'trained' ? config.quorum : key === 'revealed' ? shareThreshold(holders) : needed;
    if (set.length < min) return [`${key}: ${set.length} clients, fewer than the ${min} this round needs`];
    for (const s of set) {
      const why = fieldsMissing(s.statement);
      if (why) return [`${key}: client ${s.statement.client}: ${why}`];
    }
    if (previous) {
      const digest = participantsDigest(previous);
      const members = new Set(previous.map((s) => s.statement.client));
      for (const s of set) {
        if (!members.has(s.statement.client))
          return [`${key}: client ${s.statement.client} was not in the round's previous phase`];
        if (s.statement.participants !== digest)
          return [`${key}: client ${s.statement.client} answered another set of participants`];
      }
    }
    previous = set;
  }
  return [];
}

function fieldsMissing(s: ClientStatement): string | undefined {
  const hex = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  const b64 = (v: unknown) => typeof v === 'string' && v.length === 44;
  if (s.kind === 'trained' && !(b64(s.agreementKey) && b64(s.channelKey))) return 'no round keys';
  if (s.kind === 'shared' && !(hex(s.update) && hex(s.selfMask))) return 'no sealed shares or self-mask commitment';
  if ((s.kind === 'masked' || s.kind === 'revealed') && !hex(s.update)) return `no ${s.kind} data`;
  return undefined;
}

/** The trained clients' ids, sorted: holder i's share is at x = i + 1. */
export function holdersOf(trained: SignedStatement[]): string[] {
  return trained.map((t) => t.statement.client).sort();
}
