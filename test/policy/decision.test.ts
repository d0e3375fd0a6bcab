// Channels sign with node:crypto; the workflow verifies with pure-JS Ed25519. Both must agree byte for byte.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey, signDecision } from '../../activities/keys.js';
import { decodeBase64, encodeBase64, verifyDecision, type Decision } from '../../policy/index.js';

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
