// The pure pieces the trust boundary stands on: canonical bytes, digests, the audit chain, own-key lookups,
// decisions bound to the change, and approval rules that can never be met.
import { describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { rawPublicKey, signDecision } from '../../activities/keys.js';
import {
  appendEntry,
  canonicalDecision,
  canonicalJson,
  checkChain,
  genesisDigest,
  own,
  parsePolicy,
  subjectDigest,
  unmeetableApproval,
  verifyDecision,
  type AuditEntry,
} from '../../policy/index.js';

describe('canonical JSON', () => {
  test('sorts keys at every level, drops undefined members, and refuses what has no JSON form', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, undefined, 'x'], c: undefined, b: true } })).toBe(
      '{"a":{"b":true,"d":[1,null,"x"]},"b":1}',
    );
    expect(() => canonicalJson({ x: NaN })).toThrow('NaN has no canonical JSON form');
    expect(() => canonicalJson(new Date())).toThrow('only plain objects have a canonical JSON form');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow('a cyclic value has no canonical JSON form');
  });
});

describe('subject digest', () => {
  const s = { repo: 'acme/models', pr: 7, headSha: 'a'.repeat(40), author: 'mia-ml', source: 'github' as const };
  test('changes with the head commit, author, PR or how the start was proven; not with title or link', () => {
    const d = subjectDigest(s);
    expect(subjectDigest({ ...s, title: 'x', url: 'http://y' })).toBe(d);
    for (const other of [
      { ...s, headSha: 'b'.repeat(40) },
      { ...s, author: 'alice' },
      { ...s, pr: 8 },
      { ...s, source: 'cli' as const },
    ])
      expect(subjectDigest(other)).not.toBe(d);
  });
});

describe('decisions', () => {
  const pair = generateKeyPairSync('ed25519');
  const base = {
    workflowId: 'p',
    stage: 'plan',
    person: 'alice',
    channel: 'cli' as const,
    decision: 'approve' as const,
    comment: '',
    issuedAt: '2026-12-01T00:00:00.000Z',
  };
  test('v1 bytes are unchanged; v2 binds the subject digest under its own domain tag', () => {
    expect(new TextDecoder().decode(canonicalDecision(base))).toBe(
      'secmlops-decision-v1\n{"channel":"cli","comment":"","decision":"approve","issuedAt":"2026-12-01T00:00:00.000Z","person":"alice","stage":"plan","workflowId":"p"}',
    );
    const v2 = signDecision({ ...base, subjectDigest: 'a'.repeat(64) }, pair.privateKey);
    expect(new TextDecoder().decode(canonicalDecision(v2))).toMatch(
      /^secmlops-decision-v2\n\{.*"subjectDigest":"a{64}".*\}$/,
    );
    expect(verifyDecision(v2, rawPublicKey(pair.publicKey))).toBe(true);
    expect(verifyDecision({ ...v2, subjectDigest: 'b'.repeat(64) }, rawPublicKey(pair.publicKey))).toBe(false);
    // Stripping the digest does not turn a v2 signature into a valid v1 one.
    const { subjectDigest: _d, ...stripped } = v2;
    expect(verifyDecision(stripped, rawPublicKey(pair.publicKey))).toBe(false);
  });
});

describe('the audit chain', () => {
  const entry = (kind: AuditEntry['kind'], at: string): Omit<AuditEntry, 'prev'> => ({
    at,
    stage: 'plan',
    kind,
    roles: [],
  });
  const chain = () => {
    const trail: AuditEntry[] = [];
    let head = genesisDigest('p');
    for (const [i, k] of (['task', 'decision', 'end'] as const).entries())
      head = appendEntry(trail, head, entry(k, `2026-12-01T00:00:0${i}.000Z`));
    return trail;
  };
  test('holds as written; breaks on removal, reordering, insertion, edits and another pipeline', () => {
    expect(checkChain('p', chain())).toHaveProperty('head');
    const removed = chain();
    removed.splice(1, 1);
    const reordered = chain();
    reordered.reverse();
    const edited = chain();
    edited[1].roles = ['R3'];
    const inserted = chain();
    inserted.splice(1, 0, { ...inserted[1] });
    for (const broken of [removed, reordered, edited, inserted])
      expect(checkChain('p', broken)).toEqual({ problem: expect.stringContaining('the chain is broken') });
    expect(checkChain('q', chain())).toEqual({ problem: expect.stringContaining('does not follow') });
  });
});

describe('own-key lookups', () => {
  test('never find what Object.prototype holds', () => {
    const channels: Record<string, { publicKey: string }> = { cli: { publicKey: 'k' } };
    expect(own(channels, 'cli')).toEqual({ publicKey: 'k' });
    for (const k of ['constructor', '__proto__', 'toString', 'hasOwnProperty'])
      expect(own(channels, k)).toBeUndefined();
    expect(own(channels, 42)).toBeUndefined();
  });
});

describe('approval rules that can never be met', () => {
  const policy = parsePolicy(
    `version: 1
name: t
people: { omar: { github: omar-owner }, carol: {}, pat: {} }
roles: { R7: { members: [omar] }, R5: { members: [carol, omar] }, R3: { members: [pat] } }
stages: [plan]
`,
    { file: 't.yaml' },
  );
  test('are named once the author is excluded; meetable ones pass', () => {
    expect(unmeetableApproval(policy, { roles: ['R7', 'R5'], quorum: 2, everyRole: true }, 'someone')).toBeUndefined();
    expect(unmeetableApproval(policy, { roles: ['R7', 'R5'], quorum: 2, everyRole: true }, 'omar-owner')).toBe(
      "the approval needs 2 distinct people holding R7 or R5, but only 1 can decide (omar excluded as the change's author)",
    );
    expect(unmeetableApproval(policy, { roles: ['R3'], quorum: 2, everyRole: false }, undefined)).toBe(
      'the approval needs 2 distinct people holding R3, but only 1 can decide',
    );
    // omar holds R7 and R5, carol only R5: a different person per role is possible (omar R7, carol R5)...
    expect(unmeetableApproval(policy, { roles: ['R7', 'R5'], quorum: 2, everyRole: true }, 'pat')).toBeUndefined();
  });
});
