// Real keys, real Fashion-MNIST and real policies in a temporary folder, for tests.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevKeys } from '../../activities/keys.js';
import { parsePolicy, type Policy } from '../../policy/index.js';

export const FASHION = '/usr/share/datasets/fashion-mnist';
export const TEST_FILES = ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'];

export interface Fixture {
  dir: string;
  keys: string;
  artifacts: string;
  dataset: string;
  /** Path of a private key file by name: cli, console, slack, github, release. */
  key: (name: string) => string;
}

export async function makeFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'secmlops-test-'));
  const keys = join(dir, 'keys');
  await ensureDevKeys(keys);
  const dataset = join(dir, 'data');
  await mkdir(dataset);
  for (const f of TEST_FILES) await copyFile(join(FASHION, f), join(dataset, f));
  return { dir, keys, artifacts: join(dir, 'artifacts'), dataset, key: (n) => join(keys, `${n}.key`) };
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

export interface PolicyOptions {
  stages?: string;
  extra?: string;
  files?: { path: string; sha256: string }[];
  splits?: boolean;
  /** artifacts.model.path */
  model?: string;
  /** Adds a train split of the standard Fashion-MNIST training file names (the files must be in the dataset). */
  trainSplit?: boolean;
  /** Pins the github channel's key too. */
  githubChannel?: boolean;
}

/** The example's people and roles, with mia (the usual author) also holding R3 so separation of duties is testable. */
export async function testPolicy(fx: Fixture, opts: PolicyOptions = {}): Promise<Policy> {
  return parsePolicy(await testPolicyText(fx, opts), { file: 'test.yaml', readKeyFile: (p) => readFileSync(join(fx.dir, p), 'utf8') });
}

/** The policy's YAML, for tests that read it from a file (key paths are relative to fx.dir). */
export async function testPolicyText(fx: Fixture, opts: PolicyOptions = {}): Promise<string> {
  const files = opts.files ?? (await Promise.all(TEST_FILES.map(async (f) => ({ path: f, sha256: await sha256(join(fx.dataset, f)) }))));
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
${opts.model ? `  model: { path: ${opts.model} }` : ''}
threatModel:
  assets: [{ id: data }]
  controls:
    - { id: digests, mitigates: [{ asset: data, stride: STRIDE }] }
channels:
  cli: { publicKeyFile: keys/cli.pub }
  slack: { publicKeyFile: keys/slack.pub }
${opts.githubChannel ? '  github: { publicKeyFile: keys/github.pub }' : ''}
release: { publicKeyFile: keys/release.pub }
${opts.extra ?? ''}`;
}
