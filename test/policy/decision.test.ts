// Channels sign with node:crypto; the workflow verifies with pure-JS Ed25519. Both must agree byte for byte.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey, signDecision } from '../../activities/keys.js';
import {
  DecisionVerifier,
  checkDecision,
  decodeBase64,
  encodeBase64,
  parsePolicy,
  verifyDecision,
  type Decision,
  type SignedDecision,
} from '../../policy/index.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const pub = rawPublicKey(publicKey);
const d: Decision = {
  workflowId: 'wf',
  stage: 'plan',
  person: 'alice',
  channel: 'cli',
  decision: 'approve',
  comment: 'ok ✓',
  issuedAt: '2026-11-26T12:00:00.000Z',
};

describe('signed decisions', () => {
  test('a node:crypto signature verifies with the workflow-side verifier', () => {
    expect(verifyDecision(signDecision(d, privateKey), pub)).toBe(true);
  });

  test.each(['workflowId', 'stage', 'person', 'channel', 'decision', 'comment', 'issuedAt'] as const)(
    'changing %s after signing breaks it',
    (field) => {
      const signed = signDecision(d, privateKey);
      expect(verifyDecision({ ...signed, [field]: signed[field] + 'x' }, pub)).toBe(false);
    },
  );

  test('malformed signatures and keys fail closed', () => {
    const signed = signDecision(d, privateKey);
    expect(verifyDecision({ ...signed, signature: 'not base64!' }, pub)).toBe(false);
    expect(verifyDecision({ ...signed, signature: signed.signature.slice(0, 20) }, pub)).toBe(false);
    expect(verifyDecision(signed, encodeBase64(new Uint8Array(32)))).toBe(false);
    expect(verifyDecision(signed, 'short')).toBe(false);
  });

  test('base64 round-trips without Buffer', () => {
    for (const n of [0, 1, 2, 3, 31, 32, 64]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
      expect(encodeBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
      expect(decodeBase64(encodeBase64(bytes))).toEqual(bytes);
    }
  });
});

describe('the verifier an Update validator and its handler share', () => {
  test('a decision verified once is remembered; a forgery of the same text is not', () => {
    const v = new DecisionVerifier();
    const signed = signDecision(d, privateKey);
    expect(v.verify(signed, pub)).toBe(true);
    expect(v.verify(signed, pub)).toBe(true);
    // Same text, another signature; same signature, other text; same everything, another key.
    const other = signDecision({ ...d, comment: 'other' }, privateKey);
    expect(v.verify({ ...signed, signature: other.signature }, pub)).toBe(false);
    expect(v.verify({ ...signed, comment: 'other' }, pub)).toBe(false);
    const stranger = rawPublicKey(generateKeyPairSync('ed25519').publicKey);
    expect(v.verify(signed, stranger)).toBe(false);
  });

  test('failures are not remembered and the memory stays bounded', () => {
    const v = new DecisionVerifier(2);
    const a = signDecision({ ...d, comment: 'a' }, privateKey);
    const b = signDecision({ ...d, comment: 'b' }, privateKey);
    const c = signDecision({ ...d, comment: 'c' }, privateKey);
    for (const x of [a, b, c]) expect(v.verify(x, pub)).toBe(true);
    for (let i = 0; i < 5; i++) expect(v.verify({ ...a, comment: `forged ${i}` }, pub)).toBe(false);
    // a was evicted by c and verifies again from scratch; all three still verify.
    for (const x of [a, b, c]) expect(v.verify(x, pub)).toBe(true);
    const memo = (v as unknown as { verified: Set<string> }).verified;
    expect(memo.size).toBe(2);
    // A replay padded with whitespace still verifies (base64 forgives it) but is not remembered, and no entry holds
    // more than a digest.
    const padded = { ...c, signature: c.signature + ' '.repeat(100_000) };
    expect(v.verify(padded, pub)).toBe(true);
    expect(memo.size).toBe(2);
    expect([...memo].every((k) => k.length === 64)).toBe(true);
  });

  test('a stage that is not waiting refuses before any signature is checked', () => {
    const policy = parsePolicy(
      `version: 1
name: demo
people: { alice: {} }
roles: { R3: { members: [alice] } }
stages: [plan]
channels: { cli: { publicKey: ${pub} } }
`,
      { file: 'secmlops.yaml' },
    );
    let verifications = 0;
    const counting = (x: SignedDecision, key: string) => (verifications++, verifyDecision(x, key));
    const ctx = {
      policy,
      approval: { roles: ['R3'], quorum: 1, everyRole: false },
      workflowId: 'wf',
      stage: 'plan',
      blockers: [],
      votes: [],
      now: Date.parse(d.issuedAt),
    };
    const signed = signDecision(d, privateKey);
    expect(checkDecision({ ...ctx, notWaiting: 'it is running' }, signed, counting)).toContain('not waiting');
    expect(verifications).toBe(0);
    expect(checkDecision(ctx, signed, counting)).toBeUndefined();
    expect(checkDecision(ctx, { ...signed, person: 'alice ' }, counting)).toContain('does not verify');
    expect(verifications).toBe(2);
  });
});
