// The aggregation's check of client statements: what someone polling a client's queue, or replaying, would send.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey } from '../../activities/keys.js';
import { signStatement, statementProblems, type ClientStatement } from '../../activities/federated-statement.js';
import type { FederatedConfig } from '../../policy/index.js';

const keys = [0, 1].map(() => generateKeyPairSync('ed25519').privateKey);
const config: FederatedConfig = {
  clients: keys.map((k, i) => ({ id: `client-${i + 1}`, publicKey: rawPublicKey(k) })),
  rounds: 3,
  localEpochs: 1,
  quorum: 2,
  partition: { kind: 'iid' },
  secureAggregation: false,
  roundTimeoutMs: 60_000,
  roundsPerRun: 10,
};
const want = { federation: 'fed-a', round: 2, base: 'b'.repeat(64), kind: 'update' as const };
const statement = (i: number, over: Partial<ClientStatement> = {}): ClientStatement => ({
  v: 1,
  ...want,
  client: `client-${i + 1}`,
  samples: 100,
  update: 'c'.repeat(64),
  ...over,
});

describe('client statements', () => {
  test('two honest statements hold', () => {
    expect(
      statementProblems(
        [0, 1].map((i) => signStatement(keys[i], statement(i))),
        config,
        want,
      ),
    ).toEqual([]);
  });

  test.each([
    ['another round (a replay)', { round: 1 }, 'signed for fed-a round 1, not fed-a round 2'],
    ['another federation', { federation: 'fed-b' }, 'signed for fed-b round 2, not fed-a round 2'],
    ['another starting model', { base: 'd'.repeat(64) }, "trained from global model dddddddddddd…, not this round's"],
    ['the wrong phase', { kind: 'masked' as const }, 'a masked statement where update was due'],
    ['no samples', { samples: 0 }, '0 samples'],
  ])('refuses a statement signed for %s', (_what, over, message) => {
    const problems = statementProblems([signStatement(keys[1], statement(1, over))], config, want);
    expect(problems.join('; ')).toContain(`client client-2: ${message}`);
  });

  test('refuses an unknown client, a key that is not the pinned one, an altered statement and a duplicate', () => {
    const signed = signStatement(keys[0], statement(0));
    const problems = statementProblems(
      [
        signStatement(keys[0], statement(0, { client: 'client-9' })),
        signStatement(keys[0], statement(1)),
        { ...signed, statement: { ...signed.statement, samples: 1_000_000 } },
        signed,
        signed,
        'junk',
      ],
      config,
      want,
    );
    expect(problems).toEqual([
      "client client-9: not a client of this federation's policy",
      'client client-2: the signature does not verify under the key the policy pins for it',
      'client client-1: the signature does not verify under the key the policy pins for it',
      'client client-1: more than one statement',
      'statement 5: not a signed statement',
    ]);
  });
});
