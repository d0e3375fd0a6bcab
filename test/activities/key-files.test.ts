// Key, policy and attestation files whose path comes from configuration, a policy or the command line: a FIFO,
// /dev/zero or a directory is refused at once with the path named (before, `check` grew past 6 GB on /dev/zero and
// hung forever on a FIFO), and a key file is read only up to a few KiB.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evidenceSigner } from '../../activities/evidence.js';
import { MAX_KEY_FILE_BYTES, loadPrivateKey, loadPublicKey } from '../../activities/keys.js';
import { readPolicyFile } from '../../activities/policy-source.js';
import { signRelease, type ReleaseRequest } from '../../activities/release.js';
import { LocalArtifactStore } from '../../activities/store.js';
import { verifyFile } from '../../cli/verify.js';
import { appCredentials } from '../../github/credentials.js';
import { trustFromEnv } from '../../worker/trust.js';
import { makeFixture, testPolicyText, type Fixture } from '../helpers/fixture.js';

let fx: Fixture;
let dir: string;
let fifo: string;
beforeAll(async () => {
  fx = await makeFixture();
  dir = await mkdtemp(join(tmpdir(), 'secmlops-keyfiles-'));
  fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  execFileSync('mkfifo', [join(fx.keys, 'fifo.pub')]);
  await symlink('/dev/zero', join(fx.keys, 'zero.pub'));
  await writeFile(join(dir, 'big.key'), 'x'.repeat(MAX_KEY_FILE_BYTES + 1));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(fx.dir, { recursive: true, force: true });
});

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a refusal');
}

const FIFO = 'a FIFO, not a regular file; refused';
const ZERO = 'a character device, not a regular file; refused';
const DIR = 'a directory, not a regular file; refused';

describe('key files', () => {
  test('private and public keys: devices, FIFOs, directories and oversized files are refused, naming the path', async () => {
    expect(MAX_KEY_FILE_BYTES).toBe(4096);
    await expect(loadPrivateKey('/dev/zero')).rejects.toThrow(`private key /dev/zero: ${ZERO}`);
    await expect(loadPrivateKey(fifo)).rejects.toThrow(`private key ${fifo}: ${FIFO}`);
    await expect(loadPrivateKey(dir)).rejects.toThrow(`private key ${dir}: ${DIR}`);
    await expect(loadPrivateKey(join(dir, 'big.key'))).rejects.toThrow(
      `private key ${join(dir, 'big.key')}: 4097 bytes, over the 4096-byte limit`,
    );
    await expect(loadPublicKey('/dev/zero')).rejects.toThrow(`public key /dev/zero: ${ZERO}`);
    await expect(loadPublicKey(fifo)).rejects.toThrow(`public key ${fifo}: ${FIFO}`);
    expect(await loadPrivateKey(fx.key('release'))).toBeDefined();
  }, 5000);

  test('the evidence and release signing keys', async () => {
    await expect(evidenceSigner(fifo)()).rejects.toThrow(
      `evidence signing key: private key ${fifo}: ${FIFO} (set SECMLOPS_EVIDENCE_KEY)`,
    );
    const release = new MockActivityEnvironment().run(
      signRelease,
      new LocalArtifactStore(fx.artifacts),
      '/dev/zero',
      evidenceSigner(fx.key('evidence')),
      { dossier: {} } as unknown as ReleaseRequest,
    );
    await expect(release).rejects.toThrow(`release signing key: private key /dev/zero: ${ZERO}`);
  }, 5000);

  test('the GitHub App key, before anything is sent', async () => {
    for (const [path, why] of [
      ['/dev/zero', ZERO],
      [fifo, FIFO],
    ])
      await expect(appCredentials('1', path, '2', 'http://127.0.0.1:1').token()).rejects.toThrow(
        `cannot read the GitHub App key ${path} (SECMLOPS_GITHUB_APP_KEY): ${why}`,
      );
  }, 5000);

  test('the start keys a worker trusts', () => {
    expect(() => trustFromEnv({ SECMLOPS_POLICY_ROOT: dir, SECMLOPS_START_KEYS: fifo })).toThrow(
      `SECMLOPS_START_KEYS: ${fifo}: ${FIFO}`,
    );
  }, 5000);
});

describe('policy files and the key files they pin', () => {
  const write = async (name: string, keyFile: string) => {
    const text = (await testPolicyText(fx)).replace('publicKeyFile: keys/cli.pub', `publicKeyFile: ${keyFile}`);
    await writeFile(join(fx.dir, name), text);
    return join(fx.dir, name);
  };

  test.each([
    ['keys/fifo.pub', FIFO],
    ['/dev/zero', ZERO],
    ['keys', DIR],
  ])(
    'a pinned key file %s is refused, naming the policy and the key file',
    async (keyFile, why) => {
      const name = `pins-${keyFile.replace(/\W/g, '')}.yaml`;
      const path = await write(name, keyFile);
      const message = messageOf(() => readPolicyFile(path));
      expect(message).toContain(`${name}: `);
      expect(message).toContain(`key file ${keyFile}: ${why}`);
    },
    5000,
  );

  test('inside a policy source, a key file linked to /dev/zero is outside it; a FIFO as the policy is refused', () => {
    const shown = { root: fx.dir };
    expect(() => readPolicyFile(fifo)).toThrow(FIFO);
    return write('zero-link.yaml', 'keys/zero.pub').then((path) =>
      expect(() => readPolicyFile(path.slice(fx.dir.length + 1), shown)).toThrow(
        `zero-link.yaml: (top level): key file keys/zero.pub is outside the policy source ${fx.dir}`,
      ),
    );
  }, 5000);
});

describe('secmlops verify', () => {
  test('the attestation file: devices, FIFOs and files over 16 MiB are refused, naming the path', async () => {
    const big = join(dir, 'big.json');
    await writeFile(big, '');
    await truncate(big, 16 * 2 ** 20 + 1);
    for (const [path, why] of [
      ['/dev/zero', ZERO],
      [fifo, FIFO],
      [big, '16777217 bytes, over the 16777216-byte limit'],
    ])
      await expect(verifyFile(path, { artifactsDir: fx.artifacts })).rejects.toThrow(`cannot verify ${path}: ${why}`);
  }, 5000);
});
