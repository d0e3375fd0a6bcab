// Secure aggregation's recovery from a drop after masking: Shamir shares over GF(2^8), shares sealed for their
// holders, and the double-masked sum completed without the dropped client while no single input is exposed.
import { describe, expect, test } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { combine, split } from '../../engine/federated/shamir.js';
import {
  addMask,
  dealShares,
  openShare,
  recoverSum,
  sealShare,
  selfMask,
  type Revealed,
} from '../../engine/federated/recovery.js';
import { shareThreshold } from '../../policy/federated-threshold.js';
import { maskedContribution, newAgreementKey, unmaskedSum } from '../../engine/federated/secure-sum.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('Shamir over GF(2^8)', () => {
  test('any t of n shares give the secret back; t − 1 do not', () => {
    const secret = randomBytes(32);
    const shares = split(secret, 5, 3);
    expect(shares.map((s) => s.x)).toEqual([1, 2, 3, 4, 5]);
    for (const pick of [
      [0, 1, 2],
      [4, 2, 0],
      [1, 3, 4],
      [0, 1, 2, 3, 4],
    ])
      expect(combine(pick.map((i) => shares[i])).equals(secret)).toBe(true);
    expect(combine([shares[0], shares[3]]).equals(secret)).toBe(false);
    // No share is the secret, and two dealings of one secret differ.
    expect(shares.some((s) => s.y.equals(secret))).toBe(false);
    expect(split(secret, 5, 3)[0].y.equals(shares[0].y)).toBe(false);
  });

  test('refuses repeated points and impossible thresholds', () => {
    const shares = split(randomBytes(4), 3, 2);
    expect(() => combine([shares[0], shares[0]])).toThrow('two shares at x = 1');
    expect(() => split(randomBytes(4), 3, 4)).toThrow('a threshold of 4 for 3 shares');
  });

  test('the threshold is a majority, at least 2', () => {
    expect([2, 3, 4, 5, 10].map(shareThreshold)).toEqual([2, 2, 3, 3, 6]);
  });
});

describe('sealed shares', () => {
  test('open for their holder only, in their context only', () => {
    const [a, b, c] = [newAgreementKey(), newAgreementKey(), newAgreementKey()];
    const share = randomBytes(64);
    const sealed = sealShare(a, b.publicKey, share, 'f\n1\nd\na→b');
    expect(openShare(b, a.publicKey, sealed, 'f\n1\nd\na→b').equals(share)).toBe(true);
    expect(() => openShare(c, a.publicKey, sealed, 'f\n1\nd\na→b')).toThrow('does not open');
    expect(() => openShare(b, a.publicKey, sealed, 'f\n2\nd\na→b')).toThrow('does not open');
    const bytes = Buffer.from(sealed, 'base64');
    bytes[20] ^= 1;
    expect(() => openShare(b, a.publicKey, bytes.toString('base64'), 'f\n1\nd\na→b')).toThrow('does not open');
  });
});

describe('a round with a drop after sharing', () => {
  const ids = ['a', 'b', 'c', 'd'];
  const length = 50;
  const inputs = ids.map(() => Float32Array.from({ length }, () => Math.random() * 4 - 2));
  const maskKeys = ids.map(() => newAgreementKey());
  const seeds = ids.map(() => randomBytes(32));
  const context = 'fed\n1\nparticipants';
  const participants = ids.map((id, i) => ({ id, agreementKey: maskKeys[i].publicKey }));
  // Every client deals to every participant (sealing is checked above; here the shares travel in the clear).
  const dealt = ids.map((_id, i) => dealShares(maskKeys[i], seeds[i], ids, shareThreshold(ids.length)));
  const masked = ids.map((id, i) => {
    const y = maskedContribution(inputs[i], 0.25, id, maskKeys[i], participants, context);
    addMask(y, selfMask(seeds[i], context, length), 1);
    return y;
  });
  const reveal = (holder: number, survivors: string[]): Revealed => ({
    x: holder + 1,
    shares: Object.fromEntries(
      ids.map((v, j) => {
        const s = dealt[j].get(ids[holder])!;
        const self = survivors.includes(v);
        return [
          v,
          { kind: self ? 'self' : 'mask', share: (self ? s.subarray(32) : s.subarray(0, 32)).toString('base64') },
        ];
      }),
    ),
  });
  const recovery = (survivors: string[], holders: number[]) => ({
    threshold: shareThreshold(ids.length),
    contributions: new Map(survivors.map((id) => [id, masked[ids.indexOf(id)]])),
    maskKeys: new Map(ids.map((id, i) => [id, maskKeys[i].publicKey])),
    selfCommitments: new Map(ids.map((id, i) => [id, sha256(seeds[i])])),
    revealed: holders.map((h) => reveal(h, survivors)),
    context,
  });

  test('d drops after the masks were agreed: the survivors complete the sum of a, b and c', () => {
    const sum = recoverSum(recovery(['a', 'b', 'c'], [0, 1, 2]), sha256);
    for (let i = 0; i < length; i++) expect(sum[i]).toBeCloseTo(0.25 * (inputs[0][i] + inputs[1][i] + inputs[2][i]), 5);
  });

  test('without the reveal, the survivors’ masked sum is noise', () => {
    const plain = unmaskedSum(masked.slice(0, 3));
    const far = plain.filter((v, i) => Math.abs(v - 0.25 * (inputs[0][i] + inputs[1][i] + inputs[2][i])) > 1);
    expect(far.length).toBeGreaterThan(length * 0.9);
  });

  test('fewer survivors revealing than the threshold, or a tampered share, is refused', () => {
    expect(() => recoverSum(recovery(['a', 'b', 'c'], [0, 1]), sha256)).toThrow('2 survivors revealed shares; 3');
    const r = recovery(['a', 'b', 'c'], [0, 1, 2]);
    const bad = Buffer.from(r.revealed[0].shares.d.share, 'base64');
    bad[5] ^= 1; // (not byte 0: X25519 clears its low three bits, so a change there can be harmless)
    r.revealed[0].shares.d.share = bad.toString('base64');
    expect(() => recoverSum(r, sha256)).toThrow("d's mask key rebuilt from the shares does not match");
    const s = recovery(['a', 'b', 'c'], [0, 1, 2]);
    s.revealed[2].shares.a = { kind: 'mask', share: s.revealed[2].shares.a.share };
    expect(() => recoverSum(s, sha256)).toThrow('a survivor revealed no self share of a');
  });
});
