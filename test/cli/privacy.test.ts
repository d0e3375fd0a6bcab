// `secmlops privacy epsilon|noise` as a user runs them: JSON with top-level epsilon / noiseMultiplier, and one clear
// error naming the option (exit 2) for each parameter out of range.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const secmlops = (...args: string[]) => run(process.execPath, ['bin/secmlops.js', 'privacy', ...args]);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-privacy-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('secmlops privacy', () => {
  test('epsilon: TF Privacy’s MNIST setting (batch 256 of 60,000, σ 1.1, 14,062 steps, δ 1e-5)', async () => {
    const json = join(dir, 'eps.json');
    const { stdout } = await secmlops(
      'epsilon',
      ...['--sample-rate', String(256 / 60000), '--noise-multiplier', '1.1', '--steps', '14062'],
      ...['--delta', '1e-5', '--json', json],
    );
    expect(stdout).toMatch(/^ε = 2\.5966 at δ = 0\.00001/);
    const r = JSON.parse(await readFile(json, 'utf8')) as { epsilon: number; order: number };
    expect(r.epsilon).toBeCloseTo(2.59655587, 6);
    expect(r.order).toBe(8.1);
  });

  test('noise: the σ that keeps ε ≤ 3 over 20 epochs at q 256/60000', async () => {
    const json = join(dir, 'noise.json');
    await secmlops(
      'noise',
      ...['--sample-rate', String(256 / 60000), '--epochs', '20', '--target-epsilon', '3', '--delta', '1e-5'],
      ...['--json', json],
    );
    const r = JSON.parse(await readFile(json, 'utf8')) as { noiseMultiplier: number; epsilon: number; steps: number };
    expect(r.noiseMultiplier).toBeCloseTo(0.8026, 2);
    expect(r.epsilon).toBeLessThanOrEqual(3);
    expect(r.steps).toBe(4700);
  });

  test.each([
    [['epsilon', '--sample-rate', '0', '--noise-multiplier', '1', '--steps', '10', '--delta', '1e-5'], '--sample-rate'],
    [
      ['epsilon', '--sample-rate', '0.1', '--noise-multiplier', '-1', '--steps', '10', '--delta', '1e-5'],
      '--noise-multiplier',
    ],
    [['epsilon', '--sample-rate', '0.1', '--noise-multiplier', '1', '--steps', '10', '--delta', '1'], '--delta'],
    [
      ['noise', '--sample-rate', '0.5', '--epochs', '1000', '--target-epsilon', '0.0001', '--delta', '1e-5'],
      '--target-epsilon',
    ],
  ])('%j exits 2 naming %s', async (args, option) => {
    await expect(secmlops(...args)).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining(`${option}: `),
    });
  });

  test.each([
    [['--clip', '0', '--sample-rate', '0.01', '--noise-multiplier', '1'], '--clip: must be above 0'],
    [['--clip', '1', '--noise-multiplier', '1'], '--defense dp-sgd needs --sample-rate'],
    [['--clip', '1', '--sample-rate', '0.01'], '--defense dp-sgd needs --noise-multiplier S or --target-epsilon EPS'],
    [
      ['--clip', '1', '--sample-rate', '0.5', '--target-epsilon', '0.0001'],
      '--target-epsilon: ε 0.0001 is out of reach',
    ],
  ])('train --defense dp-sgd %j exits 2: %s', async (args, message) => {
    await expect(
      run(process.execPath, [
        'bin/secmlops.js',
        'train',
        ...['--data', '/usr/share/datasets/fashion-mnist', '--defense', 'dp-sgd', '--out', join(dir, 'x.onnx')],
        ...args,
      ]),
    ).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining(message) });
  });
});
