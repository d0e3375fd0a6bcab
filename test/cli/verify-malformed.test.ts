// `verify` on files that are JSON but not an attestation, or attestations whose signed statement has fields of the
// wrong type: one clear line naming the file, never a JavaScript TypeError (found by the fuzz suite).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyFile } from '../../cli/verify.js';
import { RELEASE_PUB, envelopeText, seedStatement } from '../../fuzz/attestation.js';

let dir: string;
let key: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-verify-'));
  key = join(dir, 'release.pub');
  await writeFile(key, RELEASE_PUB);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function verify(name: string, text: string) {
  const file = join(dir, name);
  await writeFile(file, text);
  return { file, run: () => verifyFile(file, { keyPath: key, artifactsDir: join(dir, 'artifacts') }) };
}

describe('verify on malformed documents', () => {
  test('the seed attestation verifies, so the refusals below are about the damage', async () => {
    const { run } = await verify('good.json', envelopeText(seedStatement()));
    expect((await run()).problems).toEqual([]);
  });

  test.each([
    ['a JSON string', '"x"', 'is not a JSON object'],
    ['a JSON list', '[1, 2]', 'is not a JSON object'],
    ['null', 'null', 'is not a JSON object'],
  ])('%s', async (name, text, message) => {
    const { file, run } = await verify(`${name}.json`, text);
    await expect(run()).rejects.toThrow(`${file} ${message}`);
  });

  test.each([
    ['subject is not a list', (s: Record<string, unknown>) => ({ ...s, subject: 'x' }), 'has no subject list'],
    ['predicate is null', (s: Record<string, unknown>) => ({ ...s, predicate: null }), 'no predicate'],
    [
      'a subject without a digest',
      (s: Record<string, unknown>) => ({ ...s, subject: [{ name: 'model.onnx' }] }),
      'is malformed: ',
    ],
  ])('a re-signed statement whose %s', async (name, change, message) => {
    const { run } = await verify(`${name}.json`, envelopeText(change(seedStatement())));
    await expect(run()).rejects.toThrow(message);
  });
});
