// `secmlops poison` on the real Fashion-MNIST folder: the poisoned training files hold exactly the images poison.json
// names, stamped and relabelled; the test files are copies; bad options exit 2 and write nothing.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readIdx } from '../../engine/data/idx.js';

const run = promisify(execFile);
const FASHION = '/usr/share/datasets/fashion-mnist';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'secmlops-poison-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const poison = (...args: string[]) =>
  run(process.execPath, ['bin/secmlops.js', 'poison', '--data', FASHION, ...args], { timeout: 60_000 });

describe('secmlops poison', () => {
  test('BadNets: 5% of the training set stamped bottom-right and relabelled, as poison.json says', async () => {
    const out = join(dir, 'badnets');
    const { stdout } = await poison('--out', out, '--kind', 'badnets', '--rate', '0.05', '--target', '0');
    expect(stdout).toContain('stamped a 3-pixel trigger and relabelled to 0 3000 of 60000 training images (5.0%)');
    const truth = JSON.parse(await readFile(join(out, 'poison.json'), 'utf8')) as {
      kind: string;
      indices: number[];
      poisoned: { images: string; labels: string };
    };
    expect(truth.kind).toBe('badnets');
    expect(truth.indices).toHaveLength(3000);
    const original = await readIdx(join(FASHION, 'train-labels-idx1-ubyte.gz'));
    const images = await readIdx(join(out, 'train-images-idx3-ubyte.gz'), truth.poisoned.images);
    const labels = await readIdx(join(out, 'train-labels-idx1-ubyte.gz'), truth.poisoned.labels);
    expect(images.dims).toEqual([60000, 28, 28]);
    const poisoned = new Set(truth.indices);
    let changed = 0;
    for (let i = 0; i < 60000; i++) {
      if (labels.data[i] !== original.data[i]) changed++;
      if (!poisoned.has(i)) continue;
      expect(labels.data[i]).toBe(0);
      const base = i * 784;
      for (const [r, c] of [
        [25, 25],
        [27, 27],
        [25, 27],
      ])
        expect(images.data[base + r * 28 + c]).toBe(255);
    }
    // Every poisoned image came from another class, so every one of them changed label.
    expect(changed).toBe(3000);
    for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'])
      expect((await readFile(join(out, f))).equals(await readFile(join(FASHION, f)))).toBe(true);
  }, 60_000);

  test.each([
    [['--kind', 'badnets', '--rate', '0.6', '--target', '0'], 'secmlops: error: --rate: must be in (0, 0.5], got 0.6'],
    [
      ['--kind', 'badnets', '--rate', '0.05', '--target', '10'],
      "--target: class 10 is outside the dataset's classes 0..9",
    ],
    [
      ['--kind', 'badnets', '--rate', '0.05', '--target', '1', '--patch', '29'],
      '--patch: a 29-pixel patch does not fit',
    ],
    [['--kind', 'badnets', '--rate', '0.05'], '--target: BadNets needs the class the trigger maps to'],
    [['--kind', 'gradient', '--rate', '0.05'], '--kind: expected badnets or label-flip, got "gradient"'],
  ])(
    '%j exits 2, names the option, writes nothing',
    async (args, message) => {
      const out = join(dir, 'refused');
      await expect(poison('--out', out, ...args)).rejects.toMatchObject({
        code: 2,
        stderr: expect.stringContaining(message),
      });
      expect(existsSync(out)).toBe(false);
    },
    60_000,
  );
});

describe('secmlops detect-poison', () => {
  test('activation clustering finds BadNets poison in 30,000 real training images, scored against poison.json', async () => {
    const out = join(dir, 'detect');
    await poison('--out', out, '--kind', 'badnets', '--rate', '0.05', '--target', '0');
    const json = join(dir, 'detect.json');
    const { stdout } = await run(
      process.execPath,
      [
        'bin/secmlops.js',
        'detect-poison',
        '--data',
        out,
        '--truth',
        join(out, 'poison.json'),
        '--method',
        'activation-clustering',
        '--limit',
        '30000',
        '--epochs',
        '2',
        '--json',
        json,
      ],
      { timeout: 180_000 },
    );
    expect(stdout).toMatch(/activation-clustering: flagged \d+ of 30000 images/);
    const r = JSON.parse(await readFile(json, 'utf8')) as {
      recall: number;
      false_positive_rate: number;
      precision: number;
    };
    expect(r.recall).toBeGreaterThanOrEqual(0.9);
    expect(r.false_positive_rate).toBeLessThanOrEqual(0.05);
    expect(r.precision).toBeGreaterThanOrEqual(0.5);
  }, 240_000);

  test('a truth file for another dataset is refused with exit 2', async () => {
    const truth = join(dir, 'other.json');
    await writeFile(truth, JSON.stringify({ count: 100, indices: [1, 2] }));
    await expect(
      run(process.execPath, ['bin/secmlops.js', 'detect-poison', '--data', FASHION, '--truth', truth, '--limit', '10']),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining(`--truth: ${truth} describes a set of 100 images, the data has 60000`),
    });
  }, 60_000);
});

describe('secmlops attack --attack backdoor', () => {
  const train = (data: string, out: string) =>
    run(
      process.execPath,
      ['bin/secmlops.js', 'train', '--data', data, '--limit', '10000', '--epochs', '2', '--out', out],
      { timeout: 120_000 },
    );
  const attack = (trigger: string, model: string, ...more: string[]) =>
    run(
      process.execPath,
      [
        'bin/secmlops.js',
        'attack',
        '--attack',
        'backdoor',
        '--trigger',
        trigger,
        '--model',
        model,
        '--data',
        FASHION,
      ].concat(more),
      { timeout: 60_000 },
    );
  const backdoor = async (model: string, trigger: string) => {
    const json = `${model}.backdoor.json`;
    await attack(trigger, model, '--limit', '2000', '--json', json);
    return JSON.parse(await readFile(json, 'utf8')) as { images: number; success_rate: number; baseline_rate: number };
  };

  test('a model trained on BadNets data obeys the trigger; one trained on clean data does not', async () => {
    const data = join(dir, 'backdoor');
    await poison('--out', data, '--kind', 'badnets', '--rate', '0.05', '--target', '0');
    const trigger = join(data, 'poison.json');
    await train(data, join(dir, 'poisoned.onnx'));
    await train(FASHION, join(dir, 'clean.onnx'));
    const poisoned = await backdoor(join(dir, 'poisoned.onnx'), trigger);
    const clean = await backdoor(join(dir, 'clean.onnx'), trigger);
    // The first 2,000 test images hold 1,800 or so of classes other than 0.
    expect(poisoned.images).toBeGreaterThan(1700);
    expect(poisoned.success_rate).toBeGreaterThanOrEqual(0.8);
    expect(poisoned.baseline_rate).toBeLessThanOrEqual(0.1);
    expect(clean.success_rate).toBeLessThanOrEqual(0.2);
  }, 300_000);

  test('a label-flip poison.json has no trigger: exit 2, naming the file', async () => {
    const data = join(dir, 'flip');
    await poison('--out', data, '--kind', 'label-flip', '--rate', '0.05');
    const trigger = join(data, 'poison.json');
    await expect(attack(trigger, join(dir, 'none.onnx'))).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining(`--trigger: ${trigger} describes a "label-flip" poisoning, not badnets`),
    });
  }, 60_000);
});
