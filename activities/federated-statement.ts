// What a federated client says about its work in a round, signed with the client's own Ed25519 key. The server's
// aggregation believes an update only with a statement that verifies under the key the policy pins for that client
// and names this federation, this round and the global model the round started from: anyone who can poll a client's
// task queue could otherwise hand in updates of their own, or replay one from another round.
import { createHash, sign, type KeyObject } from 'node:crypto';
import { canonicalJson, verifySignature } from '../policy/index.js';
import type { FederatedConfig } from '../policy/index.js';

export interface ClientStatement {
  v: 1;
  /** The server workflow's ID. */
  federation: string;
  round: number;
  client: string;
  /** SHA-256 of the global parameters the round started from. */
  base: string;
  /** Images the client trained on this round (FedAvg's weight). */
  samples: number;
  /**
   * update: a plain update (its vector's digest in `update`). With secure aggregation, phase by phase:
   * - trained: the round's X25519 keys, `agreementKey` for the pairwise masks and `channelKey` for sealing shares;
   * - shared: the sealed shares it dealt (`update`, a bundle) to the trained set hashing to `participants`, and
   *   `selfMask`, the SHA-256 of its self-mask seed;
   * - masked: the masked contribution (`update`) for the sharing set hashing to `participants`;
   * - revealed: the shares it reveals (`update`) for the masked set hashing to `participants`.
   */
  kind: 'update' | 'trained' | 'shared' | 'masked' | 'revealed';
  update?: string;
  agreementKey?: string;
  channelKey?: string;
  selfMask?: string;
  participants?: string;
  /** The client's local training loss and accuracy on its own data in its last local epoch. */
  loss?: number;
  accuracy?: number;
}

export interface SignedStatement {
  statement: ClientStatement;
  signature: string;
}

const bytesOf = (s: ClientStatement) => Buffer.from(`secmlops-federated-v1\n${canonicalJson(s)}`);

export function signStatement(key: KeyObject, statement: ClientStatement): SignedStatement {
  // Signed as the JSON it travels as, so the verifier sees the same bytes after Temporal's conversion.
  const s = JSON.parse(JSON.stringify(statement)) as ClientStatement;
  return { statement: s, signature: sign(null, bytesOf(s), key).toString('base64') };
}

/** The digest a later phase's statement names: the earlier phase's statements of every participant, by client. */
export function participantsDigest(trained: SignedStatement[]): string {
  // The statements and their signatures only, the signatures re-encoded: no extra field or base64 variant makes
  // another digest (another masking context) for the same set.
  const entries = trained
    .map((t) => ({ statement: t.statement, signature: Buffer.from(t.signature, 'base64').toString('base64') }))
    .sort((a, b) => (a.statement.client < b.statement.client ? -1 : 1));
  return createHash('sha256').update(canonicalJson(entries)).digest('hex');
}

export interface Expected {
  federation: string;
  round: number;
  base: string;
  kind: ClientStatement['kind'];
}

/**
 * Checks a set of statements: each signed by the key pinned for the client it names, for this federation, round,
 * base and kind, one per client. Returns the problems, each naming the client; none means all hold.
 */
export function statementProblems(signed: unknown, config: FederatedConfig, want: Expected): string[] {
  if (!Array.isArray(signed)) return ['the statements are not a list'];
  const pinned = new Map(config.clients.map((c) => [c.id, c.publicKey]));
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const [i, raw] of signed.entries()) {
    const s = (raw as SignedStatement | undefined)?.statement;
    const who = typeof s?.client === 'string' ? `client ${s.client}` : `statement ${i}`;
    if (!s || typeof s !== 'object' || typeof (raw as SignedStatement).signature !== 'string') {
      problems.push(`${who}: not a signed statement`);
      continue;
    }
    const key = typeof s.client === 'string' ? pinned.get(s.client) : undefined;
    if (!key) {
      problems.push(`${who}: not a client of this federation's policy`);
      continue;
    }
    if (!verifies(raw as SignedStatement, key)) {
      problems.push(`${who}: the signature does not verify under the key the policy pins for it`);
      continue;
    }
    if (s.v !== 1 || s.federation !== want.federation || s.round !== want.round)
      problems.push(
        `${who}: signed for ${String(s.federation)} round ${String(s.round)}, ` +
          `not ${want.federation} round ${want.round}`,
      );
    else if (s.base !== want.base)
      problems.push(`${who}: trained from global model ${String(s.base).slice(0, 12)}…, not this round's`);
    else if (s.kind !== want.kind) problems.push(`${who}: a ${String(s.kind)} statement where ${want.kind} was due`);
    else if (!(Number.isInteger(s.samples) && s.samples > 0)) problems.push(`${who}: ${String(s.samples)} samples`);
    else if (seen.has(s.client)) problems.push(`${who}: more than one statement`);
    seen.add(s.client);
  }
  return problems;
}

function verifies(s: SignedStatement, publicKey: string): boolean {
  return verifySignature(s.signature, bytesOf(s.statement), publicKey);
}
