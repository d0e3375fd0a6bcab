// Hostile policy text and keys: alias bombs, deep nesting, oversized documents and public keys that would accept
// forged signatures. Every one ends as a PolicyError naming the file, whichever entry point read it.
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { loadPolicy } from '../../cli/load-policy.js';
import { MAX_POLICY_BYTES, PolicyError, parsePolicy, parsePolicyWithDigest } from '../../policy/index.js';

const BASE = `version: 1
name: t
people: { alice: {} }
roles: { R3: { members: [alice] } }
stages: [plan]
`;
const parse = (text: string) => parsePolicy(text, { file: 'secmlops.yaml' });
const refused = (text: string, message: string | RegExp) => {
  expect(() => parse(text)).toThrow(PolicyError);
  expect(() => parse(text)).toThrow(message);
};

const NINE = (x: string) => `[${Array(9).fill(x).join(', ')}]`;
/** Billion laughs: nine levels of nine aliases each, 9^9 strings once expanded. */
const BOMB =
  BASE +
  `lol: &a ${NINE('"lol"')}\n` +
  ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((x, i) => `${x}: &${x} ${NINE(`*${'abcdefghi'[i]}`)}\n`).join('');

describe('YAML limits', () => {
  test('an alias bomb is refused with the position of its first alias, by every entry point', async () => {
    const message =
      'secmlops.yaml: line 7, column 8: not valid YAML: aliases expand to more than 100 nodes, as in an alias bomb; write the repeated values out';
    refused(BOMB, message);
    expect(() => parsePolicyWithDigest(BOMB, { file: 'secmlops.yaml' })).toThrow(message);
    const dir = mkdtempSync(join(tmpdir(), 'secmlops-policy-'));
    writeFileSync(join(dir, 'bomb.yaml'), BOMB);
    await expect(loadPolicy(join(dir, 'bomb.yaml'))).rejects.toThrow(
      /bomb\.yaml: line 7, column 8: not valid YAML: aliases expand to more than 100 nodes/,
    );
  });

  test('a few aliases are fine', () => {
    const ok = BASE.replace(
      'roles: { R3: { members: [alice] } }',
      'roles: { R3: { members: &m [alice] }, R8: { members: *m } }',
    );
    expect(parse(ok).roles.find((r) => r.id === 'R8')?.members).toEqual(['alice']);
  });

  test('an alias with no anchor is a PolicyError, not a ReferenceError', () => {
    refused(
      BASE.replace('stages: [plan]', 'stages: *plan'),
      'secmlops.yaml: line 5, column 9: not valid YAML: alias *plan names no anchor &plan before it',
    );
  });

  test('nesting deeper than the parser’s stack is a PolicyError', () => {
    const deep = `${BASE}x: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
    refused(deep, /^secmlops\.yaml: line 6, column \d+: not valid YAML: nested too deeply$/);
  });

  test('a document over a megabyte is refused before it is parsed', () => {
    const big = `${BASE}# ${'x'.repeat(MAX_POLICY_BYTES)}\n`;
    refused(
      big,
      `secmlops.yaml: (top level): ${big.length} bytes, over the ${MAX_POLICY_BYTES}-byte limit for a policy`,
    );
    // Bytes, not characters: 400k three-byte characters are 1.2 MB.
    const wide = `${BASE}# ${'€'.repeat(400_000)}\n`;
    refused(wide, `secmlops.yaml: (top level): ${BASE.length + 3 + 1_200_000} bytes, over the`);
  });
});

/** The eight points of small order, in their canonical encodings. */
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000', // the identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4 (all zeros)
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
];
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');
const realKey = () => Buffer.from(ed25519.getPublicKey(ed25519.utils.randomSecretKey())).toString('hex');

describe('pinned Ed25519 keys', () => {
  const inline = (key: string) => `${BASE}channels: { cli: { publicKey: ${key} } }\n`;
  const SMALL = 'small-order point (such as all zeros or the identity), which would accept forged signatures';

  test.each(SMALL_ORDER)('the small-order point %s is refused inline and from a key file', (hex) => {
    refused(
      inline(b64(hex)),
      `secmlops.yaml: channels.cli.publicKey: expected an Ed25519 public key, but these 32 bytes encode a ${SMALL}`,
    );
    const fromFile = `${BASE}release: { publicKeyFile: keys/release.pub }\n`;
    expect(() => parsePolicy(fromFile, { file: 'p.yaml', readKeyFile: () => `${b64(hex)}\n` })).toThrow(
      `p.yaml: release.publicKeyFile: expected an Ed25519 public key, but these 32 bytes encode a ${SMALL}`,
    );
  });

  test('bytes that are not a point, or not canonically encoded, are refused', () => {
    refused(
      inline(b64('07'.repeat(32))),
      'secmlops.yaml: channels.cli.publicKey: expected an Ed25519 public key, but these 32 bytes are not a point on the curve',
    );
    // y = p: the identity's y coordinate written non-canonically.
    refused(
      inline(b64(`ed${'ff'.repeat(30)}7f`)),
      'secmlops.yaml: channels.cli.publicKey: expected an Ed25519 public key, but these 32 bytes are not a point on the curve',
    );
  });

  test('a real key plus a small-order component is refused; the real key alone passes', () => {
    const key = realKey();
    const mixed = ed25519.Point.fromBytes(Buffer.from(key, 'hex'))
      .add(ed25519.Point.fromBytes(Buffer.from(SMALL_ORDER[4], 'hex')))
      .toBytes();
    refused(
      inline(Buffer.from(mixed).toString('base64')),
      'secmlops.yaml: channels.cli.publicKey: expected an Ed25519 public key, but these 32 bytes encode a point outside the prime-order subgroup, which no Ed25519 key pair produces',
    );
    expect(parse(inline(b64(key))).channels.cli?.publicKey).toBe(b64(key));
  });

  test('a key file callback that returns no text is named', () => {
    const text = `${BASE}release: { publicKeyFile: keys/release.pub }\n`;
    expect(() => parsePolicy(text, { file: 'p.yaml', readKeyFile: () => undefined as unknown as string })).toThrow(
      'p.yaml: release.publicKeyFile: reading "keys/release.pub" gave no text',
    );
  });
});
