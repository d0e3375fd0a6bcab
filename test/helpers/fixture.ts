// Real keys, real Fashion-MNIST and real policies in a temporary folder, for tests.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevKeys } from '../../activities/keys.js';
import { parsePolicy, type Policy } from '../../policy/index.js';
import type { TrustConfig } from '../../worker/trust.js';
import { readPolicyFile, type LoadedPolicy } from '../../activities/policy-source.js';

export const FASHION = '/usr/share/datasets/fashion-mnist';
export const TEST_FILES = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

export interface Fixture {
  dir: string;
  keys: string;
  artifacts: string;
  dataset: string;
  /** Path of a private key file by name: cli, console, slack, github, release, evidence, token. */
  key: (name: string) => string;
  /** What the test workers trust: the fixture's evidence key, its folder as policy source, its cli key for starts. */
  trust: TrustConfig;
  /** The same trust (and the release key) as environment variables, for `secmlops worker` processes. */
  env: Record<string, string>;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'secmlops-test-'));
  const keys = join(dir, 'keys');
  await ensureDevKeys(keys);
  const dataset = join(dir, 'data');
  await mkdir(dataset);
  for (const f of TEST_FILES) await copyFile(join(FASHION, f), join(dataset, f));
  const trust: TrustConfig = {
    evidenceKeyPath: join(keys, 'evidence.key'),
    policyRoot: dir,
    startKeys: [(await readFile(join(keys, 'cli.pub'), 'utf8')).trim()],
    githubChannelKeyPath: join(keys, 'github.key'),
    stateStore: join(dir, 'state', 'worker.sqlite'),
  };
  const env = {
    SECMLOPS_RELEASE_KEY: join(keys, 'release.key'),
    SECMLOPS_EVIDENCE_KEY: trust.evidenceKeyPath,
    SECMLOPS_POLICY_ROOT: dir,
    SECMLOPS_START_KEYS: join(keys, 'cli.pub'),
    SECMLOPS_GITHUB_CHANNEL_KEY: trust.githubChannelKeyPath,
  };
  return { dir, keys, artifacts: join(dir, 'artifacts'), dataset, key: (n) => join(keys, `${n}.key`), trust, env };
}

/** Policies the tests made, with the fixture and YAML they came from: a pipeline starts from the file, by reference. */
const SOURCES = new WeakMap<Policy, { fx: Fixture; text: string }>();

export function policySource(policy: Policy): { fx: Fixture; text: string } {
  const src = SOURCES.get(policy);
  if (!src)
    throw new Error(
      'start test pipelines with a policy from testPolicy() or policyFromText(): workers read policies from files',
    );
  return src;
}

/** Writes a test policy into the fixture's policy source; returns its reference (relative to fx.dir). */
export async function writePolicy(policy: Policy, name: string): Promise<string> {
  const { fx, text } = policySource(policy);
  await mkdir(join(fx.dir, 'policies'), { recursive: true });
  const ref = `policies/${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.yaml`;
  await writeFile(join(fx.dir, ref), text);
  return ref;
}

/** The policy file writePolicy wrote, read back with its digest, as `verify --policy` reads it. */
export function loadWrittenPolicy(policy: Policy, name: string): LoadedPolicy {
  const { fx } = policySource(policy);
  return readPolicyFile(join(fx.dir, 'policies', `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.yaml`));
}

/** A policy from YAML text whose key paths are relative to fx.dir, as a test pipeline can start it. */
export function policyFromText(fx: Fixture, text: string): Policy {
  const policy = parsePolicy(text, { file: 'test.yaml', readKeyFile: (p) => readFileSync(join(fx.dir, p), 'utf8') });
  SOURCES.set(policy, { fx, text: text.replace(/publicKeyFile: keys\//g, 'publicKeyFile: ../keys/') });
  return policy;
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

export interface PolicyOptions {
  stages?: string;
  extra?: string;
  files?: { path: string; sha256: string }[];
  splits?: boolean;
  /** artifacts.model.path */
  model?: string;
  /** artifacts.model.sha256 */
  modelSha256?: string;
  /** Adds a train split of the standard Fashion-MNIST training file names (the files must be in the dataset). */
  trainSplit?: boolean;
  /** Pins the github channel's key too. */
  githubChannel?: boolean;
  /** Pins the console channel's key too. */
  consoleChannel?: boolean;
}

/** The example's people and roles, with mia (the usual author) also holding R3 so separation of duties is testable. */
export async function testPolicy(fx: Fixture, opts: PolicyOptions = {}): Promise<Policy> {
  return policyFromText(fx, await testPolicyText(fx, opts));
}

/** The policy's YAML, for tests that read it from a file (key paths are relative to fx.dir). */
export async function testPolicyText(fx: Fixture, opts: PolicyOptions = {}): Promise<string> {
  const files =
    opts.files ??
    (await Promise.all(TEST_FILES.map(async (f) => ({ path: f, sha256: await sha256(join(fx.dataset, f)) }))));
  return `
version: 1
name: test
people:
  alice: { github: alice-sec, slack: U0ALICE01 }
  bea: { github: bea-sec }
  dana: { github: dana-data, slack: U0DANA001 }
  mia: { github: mia-ml }
  omar: { github: omar-owner }
  carol: { github: carol-compliance }
  ivan: { github: ivan-ir }
roles:
  R1: { members: [dana] }
  R3: { members: [alice, bea, mia] }
  R5: { members: [carol] }
  R7: { members: [omar] }
  R8: { members: [ivan] }
stages:
${opts.stages ?? '  - plan\n  - data\n  - release'}
artifacts:
  dataset:
    root: ${fx.dataset}
    files:
${files.map((f) => `      - { path: ${f.path}, sha256: ${f.sha256} }`).join('\n')}
${opts.splits === false ? '' : `    splits:\n      test: { images: ${TEST_FILES[0]}, labels: ${TEST_FILES[1]} }`}
${opts.trainSplit ? '      train: { images: train-images-idx3-ubyte.gz, labels: train-labels-idx1-ubyte.gz }' : ''}
${opts.model ? `  model: { path: ${opts.model}${opts.modelSha256 ? `, sha256: ${opts.modelSha256}` : ''} }` : ''}
threatModel:
  assets: [{ id: data }]
  controls:
    - { id: digests, mitigates: [{ asset: data, stride: STRIDE }] }
channels:
  cli: { publicKeyFile: keys/cli.pub }
  slack: { publicKeyFile: keys/slack.pub }
${opts.githubChannel ? '  github: { publicKeyFile: keys/github.pub }' : ''}
${opts.consoleChannel ? '  console: { publicKeyFile: keys/console.pub }' : ''}
release: { publicKeyFile: keys/release.pub }
${opts.extra ?? ''}`;
}

export const TRAIN_FILES = ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'];

/** The digests of files in the fixture's dataset folder, for a policy's artifacts.dataset.files. */
export async function pinnedFiles(fx: Fixture, names: string[]): Promise<{ path: string; sha256: string }[]> {
  return Promise.all(names.map(async (f) => ({ path: f, sha256: await sha256(join(fx.dataset, f)) })));
}

/** Copies Fashion-MNIST's training files into the fixture's dataset; returns the pins of the training and test files. */
export async function withTrainingSet(fx: Fixture): Promise<{ path: string; sha256: string }[]> {
  for (const f of TRAIN_FILES) await copyFile(join(FASHION, f), join(fx.dataset, f));
  return pinnedFiles(fx, [...TRAIN_FILES, ...TEST_FILES]);
}
